/**
 * `-W`: ask for the password on the terminal, as libpq's simple_prompt does —
 * on /dev/tty (not stdin: `pgbb restore -` reads a backup from there), no
 * echo, a line ending at Enter; Ctrl-C or Ctrl-D gives up. Never written
 * anywhere: it goes into the connection options only.
 *
 * Errors: UsageError when there is no terminal to ask on; InterruptedError on Ctrl-C.
 */
import { closeSync, openSync } from 'node:fs';
import { ReadStream, WriteStream } from 'node:tty';
import { InterruptedError, UsageError } from '../errors';

export function promptPassword(prompt = 'Password: '): Promise<string> {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    throw new UsageError('-W: there is no terminal to ask for the password on (give it in PGPASSWORD or ~/.pgpass)');
  }
  const input = new ReadStream(fd);
  const output = new WriteStream(fd);
  input.setRawMode(true);
  output.write(prompt);
  return new Promise<string>((resolve, reject) => {
    let text = '';
    const finish = (err: Error | null) => {
      input.setRawMode(false);
      input.removeAllListeners('data');
      input.pause();
      output.write('\n');
      // The tty streams share fd: close it once, after both are done with it.
      input.destroy();
      output.destroy();
      try {
        closeSync(fd);
      } catch {
        // closed already by the streams
      }
      if (err) reject(err);
      else resolve(text);
    };
    input.on('data', (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(null);
        if (ch === '\u0003') return finish(new InterruptedError('interrupted at the password prompt', 'SIGINT'));
        if (ch === '\u0004' && text === '') return finish(null);
        if (ch === '\u007f' || ch === '\b') text = [...text].slice(0, -1).join('');
        else text += ch;
      }
    });
  });
}
