/**
 * Runs one command and reports what it cost, as one JSON line on fd 3:
 *   { wall, user, sys, maxRssKb, writeBytes, writeCallBytes, code, signal }
 *
 *   node measured-child.js CMD ARGS...   (stdin ignored; stdout and stderr are the command's)
 *
 * Why a process of its own: the kernel adds a child's counters to its parent
 * only when the parent reaps it, so the parent must do nothing else.
 *  - CPU and peak RSS come from GNU time, i.e. wait4()'s rusage of the
 *    command: user+sys of it and every descendant it reaped, and the largest
 *    ru_maxrss among them. It prints them as a line of its stderr, which
 *    we pass on without that line (a file would count as written).
 *  - Bytes written come from our own /proc/self/io after time has exited:
 *    write_bytes there includes every reaped descendant (Linux adds the
 *    child's ioac to the parent's signal struct in wait_task_zombie), minus
 *    what it said at our start. write_bytes counts bytes the kernel had to
 *    send to storage: page-cache pages dirtied by write(), not pipes, not
 *    /dev/null, not tmpfs; a page rewritten while still dirty counts once.
 *    The kernel counts a dirtied page cache folio whole, and it picks folio
 *    sizes (ext4 and xfs cache files in large folios), so an 8 KiB pwrite
 *    can count 64 KiB or more, varying run to run.
 *  - writeCallBytes is wchar from the same file: the bytes the command handed
 *    to write(), pwrite() and writev() on any descriptor (files, pipes,
 *    sockets, /dev/null). Exact and repeatable, independent of folios.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeSync } from 'node:fs';

const GNU_TIME = '/usr/bin/time';

function ioCounters(): { writeBytes: number; wchar: number } {
  const io = readFileSync('/proc/self/io', 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s*(\\d+)$`, 'm').exec(io);
    if (!m) throw new Error(`/proc/self/io has no ${name} line`);
    return Number(m[1]);
  };
  return { writeBytes: field('write_bytes'), wchar: field('wchar') };
}

const [cmd, ...args] = process.argv.slice(2);
const before = ioCounters();
const start = process.hrtime.bigint();
const MARK = 'pgbb-bench-time';
const child = spawn(GNU_TIME, ['-f', `${MARK} %U %S %M`, '--', cmd, ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
// The command's stderr is passed on when it is over, without GNU time's line.
let stderr = '';
child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
// Ctrl-C reaches the whole process group: the command ends on its own and we report that.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('close', (code, signal) => {
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const after = ioCounters();
  const lines = stderr.split('\n');
  const ours = lines.findIndex((l) => l.startsWith(MARK));
  const m = ours >= 0 ? new RegExp(`^${MARK} ([\\d.]+) ([\\d.]+) (\\d+)`).exec(lines.splice(ours, 1)[0]) : null;
  // GNU time's own note on a failed command ("Command exited with non-zero status N") goes too.
  if (ours > 0 && /^Command (exited|terminated)/.test(lines[ours - 1])) lines.splice(ours - 1, 1);
  process.stderr.write(lines.join('\n'));
  const result = {
    wall,
    user: m ? Number(m[1]) : NaN,
    sys: m ? Number(m[2]) : NaN,
    maxRssKb: m ? Number(m[3]) : NaN,
    writeBytes: after.writeBytes - before.writeBytes,
    writeCallBytes: after.wchar - before.wchar,
    code,
    signal,
  };
  writeSync(3, `${JSON.stringify(result)}\n`);
  process.exit(code ?? 1);
});
