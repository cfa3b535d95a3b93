/**
 * What Node's socket reads cost the receive path, and what reusing buffers
 * would save: one BASE_BACKUP read by BackendParser in a child process per
 * run, its CPU and peak RSS, in three ways:
 *
 *   fresh   socket 'data' events: a new 64 KiB Buffer per read (what pgbb does)
 *   reused  one 256 KiB buffer for every read (net.Socket `onread`), nothing kept
 *   pool    `onread`, and each CopyData byte copied into 256 KiB slabs taken
 *           round-robin from a ring of 16: what a slab pool that downstream
 *           stages give back would cost (copy included)
 *
 *   node dist/bench/socket-read.js [--scale 20] [--runs 3] [--conninfo "host=… port=… user=…"]
 *
 * The child speaks the startup message itself (trust authentication, as the
 * harness server has on 127.0.0.1). Not pgbb's code path: an experiment that
 * bounds what owning the socket's buffers could give (bench/README.md).
 */
import { connect, type NetConnectOpts } from 'node:net';
import { BackendParser } from '../src/codec/protocol/backend-parser';
import { arg, numArg } from './support/args';
import { fill, startBenchServer, type BenchServer } from './support/bench-server';
import { measure } from './support/measure';
import { median } from './support/stats';

const MODES = ['fresh', 'reused', 'pool'] as const;
type Mode = (typeof MODES)[number];
const SLAB = 256 * 1024;

function frontend(code: number, body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = code;
  out.writeUInt32BE(body.length + 4, 1);
  body.copy(out, 5);
  return out;
}

/** The child: one BASE_BACKUP, read the way `mode` says; prints the bytes it got. */
function child(mode: Mode, host: string, port: number): void {
  const ring = mode === 'pool' ? Array.from({ length: 16 }, () => Buffer.allocUnsafe(SLAB)) : [];
  let slab = ring[0];
  let used = 0;
  let next = 1;
  let bytes = 0;
  const keep = (part: Buffer) => {
    bytes += part.length;
    if (mode !== 'pool') return;
    if (used + part.length > SLAB) {
      slab = ring[next++ % ring.length];
      used = 0;
    }
    part.copy(slab, used);
    used += part.length;
  };
  let asked = false;
  let finished = false;
  const parser = new BackendParser(
    (code, body) => {
      if (code === 0x45) throw new Error(`server error: ${body.toString('utf8').replace(/\0/g, ' ')}`);
      if (code === 0x52 && body.readUInt32BE(0) !== 0) throw new Error('the server wants a password: use a trust connection');
      if (code === 0x64) keep(body);
      if (code !== 0x5a) return;
      if (asked) {
        finished = true;
        process.stdout.write(`${bytes}\n`);
        socket.end();
        return;
      }
      asked = true;
      socket.write(frontend(0x51, Buffer.from("BASE_BACKUP (CHECKPOINT 'fast', MANIFEST 'yes', WAL true)\0")));
    },
    { wantParts: () => true, part: (p) => keep(p) },
  );
  const opts: NetConnectOpts = { host, port };
  if (mode !== 'fresh') {
    const buffer = Buffer.allocUnsafe(SLAB);
    opts.onread = { buffer, callback: (n: number, buf: Uint8Array) => {
        parser.write(Buffer.from(buf.buffer, buf.byteOffset, n));
        return true;
      },
    };
  }
  const socket = connect(opts, () => {
    const params = Buffer.from('user\0postgres\0replication\0true\0\0');
    const startup = Buffer.alloc(8 + params.length);
    startup.writeUInt32BE(startup.length, 0);
    startup.writeUInt32BE(196608, 4); // protocol 3.0
    params.copy(startup, 8);
    socket.write(startup);
  });
  if (mode === 'fresh') socket.on('data', (d: Buffer) => parser.write(d));
  // A connection that ends before the backup did must not pass for a measurement.
  socket.on('close', () => {
    if (finished) return;
    console.error('socket-read: the connection closed before the backup was complete');
    process.exitCode = 1;
  });
}

async function main(): Promise<void> {
  const childMode = arg('child', '') as Mode | '';
  if (childMode) return child(childMode, arg('host', '127.0.0.1'), numArg('port', 5432));
  let server: BenchServer | null = null;
  let conninfo = arg('conninfo', '');
  try {
    if (!conninfo) {
      server = await startBenchServer();
      await fill(server, numArg('scale', 20), 0);
      conninfo = server.conninfo;
    }
    const host = /host=(\S+)/.exec(conninfo)?.[1] ?? '127.0.0.1';
    const port = /port=(\d+)/.exec(conninfo)?.[1] ?? '5432';
    const runs = numArg('runs', 3);
    const got: Record<Mode, { cpu: number[]; rss: number[] }> = { fresh: { cpu: [], rss: [] }, reused: { cpu: [], rss: [] }, pool: { cpu: [], rss: [] } };
    for (let i = 0; i < runs; i++) {
      for (const mode of MODES) {
        // The semi-space cap the CLI's shebang sets.
        const s = await measure(process.execPath, ['--max-semi-space-size=8', __filename, '--child', mode, '--host', host, '--port', port]);
        got[mode].cpu.push(s.cpu);
        got[mode].rss.push(s.maxRssKb / 1024);
      }
    }
    for (const mode of MODES) {
      console.log(`${mode.padEnd(6)} CPU ${median(got[mode].cpu).toFixed(2)} s, peak RSS ${median(got[mode].rss).toFixed(0)} MB (medians of ${runs})`);
    }
  } finally {
    await server?.cluster.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
