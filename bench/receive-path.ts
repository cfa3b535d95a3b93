/**
 * The receive path alone, without a server's or a busy machine's noise: one
 * real BASE_BACKUP reply is recorded as the socket delivered it, then replayed
 * (each recorded read in a fresh Buffer, as Node's socket hands them out)
 * through what `pgbb backup -D -` runs on it: BackendParser → BaseBackupDecoder
 * → manifest-verify → tally → the stdout sink (tar pack, writev) into /dev/null.
 * Prints CPU ms (the process's, and the main thread's alone), GC pauses by
 * kind and peak RSS per replay, so that a change to the path is measured on
 * exactly the same bytes.
 *
 *   node dist/bench/receive-path.js [--scale 20] [--runs 5] [--record FILE] [--replay FILE] [--path decode|stages|all|tar|zstd|map|plain]
 *                                      [--checksums CRC32C|NONE|SHA256…] [--conninfo STR]
 *
 * Without --replay it starts the harness PostgreSQL 15, fills pgbench scale N,
 * records into a temporary file (or --record FILE, kept) and stops the server;
 * with --conninfo it records from that server instead. --checksums is the
 * manifest's algorithm, for the recording and the check (a replay needs the
 * one it was recorded with).
 * `--path decode`: only parser and decoder, into a null sink; `stages`: also
 * manifest-verify and tally; `all` (default): also the stdout sink; `tar`:
 * the tar-files sink (`-F tar -N`) instead, into the temporary directory;
 * `zstd`: the stdout sink compressing (level 1, 2 workers, as the suite's
 * tar + zstd row); `map`: stages and the chunk map (chunk-map-build) into a
 * null sink; `plain`: the same into the directory sink (`-N` plain, into the
 * temporary directory). CPU is the whole process's (libzstd's threads included).
 */
import { closeSync, openSync, promises as fs, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { makeTempDir } from '../test/support/cluster';
import { BackendParser } from '../src/codec/protocol/backend-parser';
import { dispatchMessage } from '../src/codec/protocol/command-messages';
import { BaseBackupDecoder } from '../src/codec/protocol/base-backup-decoder';
import { baseBackupCommand } from '../src/codec/protocol/base-backup';
import { ReplicationConnection } from '../src/net/replication-connection';
import { clientConfig } from '../src/net/conninfo';
import { readServerSettings, type ServerSettings } from '../src/net/server-settings';
import { newTally, takingStages } from '../src/pipeline/observers';
import { StdoutSink } from '../sinks/stdout';
import { TarFilesSink } from '../sinks/tar-files';
import { DirectorySink } from '../sinks/directory';
import { chunkMapBuild } from '../transforms/chunk-map-build';
import { FdOutput } from '../src/io/stdout-output';
import { startFacts } from '../src/sources/base-backup-reader';
import type { Reporter } from '../src/report/types';
import type { CompressSpec } from '../src/codec/compression';
import type { ChecksumAlgorithm } from '../src/codec/manifest-format';
import { arg, numArg } from './support/args';
import { fill, startBenchServer } from './support/bench-server';
import { median } from './support/stats';

/** The suite's tar + zstd row: level 1, two libzstd workers. */
const ZSTD: CompressSpec = { method: 'zstd', level: 1, workers: 2 };

/** A recording: per socket read, its length (u32) then its bytes; the settings first, as JSON. */
async function record(file: string, scale: number, checksums: ChecksumAlgorithm, conninfo: string): Promise<void> {
  const server = conninfo ? null : await startBenchServer();
  let conn: ReplicationConnection | null = null;
  let fd: number | null = null;
  try {
    if (server) await fill(server, scale, 0);
    conn = await ReplicationConnection.connect(clientConfig({ conninfo: server?.conninfo ?? conninfo }));
    const settings = await readServerSettings(conn);
    const out = openSync(file, 'w');
    fd = out;
    const json = Buffer.from(JSON.stringify(settings));
    writeSync(out, u32(json.length));
    writeSync(out, json);
    // The socket itself (private to the connection): the replay must cut the bytes where the reads did.
    const socket = (conn as unknown as { socket: NodeJS.EventEmitter }).socket;
    socket.prependListener('data', (chunk: Buffer) => {
      writeSync(out, u32(chunk.length));
      writeSync(out, chunk);
    });
    await conn.run(
      baseBackupCommand({
        label: 'bench',
        checkpoint: 'fast',
        manifest: true,
        manifestChecksums: checksums,
        tablespaceMap: false,
        verifyChecksums: true,
        wal: true,
        progress: true,
        wait: false,
      }),
    );
  } finally {
    if (fd !== null) closeSync(fd);
    await conn?.close();
    await server?.cluster.destroy();
  }
}

/** This thread's user + system CPU in ms (Linux /proc, 10 ms ticks): the main thread's alone, where process.cpuUsage() counts every thread. */
function threadCpuMs(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: state is field 3, utime 14 and stime 15 (proc(5)).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

/** The recorded reads, one fresh Buffer each, pushed through the parser as fast as the pipeline takes them. */
class ReplaySource extends Readable {
  private readonly fd: number;
  private readonly parser: BackendParser;
  private paused = false;
  private done = false;
  private scheduled = false;

  constructor(file: string) {
    super({ objectMode: true, highWaterMark: 16 });
    this.fd = openSync(file, 'r');
    const settings = JSON.parse(this.next()!.toString()) as ServerSettings;
    const decoder = new BaseBackupDecoder({
      start: startFacts(settings, { label: 'bench' }),
      emit: (ev) => {
        if (!this.push(ev)) this.paused = true;
      },
    });
    const handler = {
      rowDescription: () => decoder.rowDescription(),
      dataRow: (v: (string | null)[]) => decoder.dataRow(v),
      copyStart: (k: 'out' | 'both' | 'in') => decoder.copyStart(k),
      copyData: (p: Buffer) => decoder.copyData(p),
      copyDataPart: (p: Buffer, f: boolean, l: boolean) => decoder.copyDataPart(p, f, l),
      copyDone: () => decoder.copyDone(),
      commandComplete: () => decoder.commandComplete(),
      notice: () => {},
      error: () => {},
      ready: () => {
        const end = decoder.finish();
        this.done = true;
        this.push({ type: 'end', endLsn: end.lsn, timeline: end.tli });
        this.push(null);
      },
    };
    this.parser = new BackendParser((code, body) => dispatchMessage(code, body, handler), {
      wantParts: () => true,
      part: (p, f, l) => decoder.copyDataPart(p, f, l),
    });
  }

  private next(): Buffer | null {
    const head = Buffer.allocUnsafe(4);
    if (readSync(this.fd, head) < 4) return null;
    const chunk = Buffer.allocUnsafe(head.readUInt32BE(0));
    readSync(this.fd, chunk);
    return chunk;
  }

  override _read(): void {
    this.paused = false;
    if (!this.scheduled) this.schedule();
  }

  /** As a socket is read: libuv reads a readable stream up to 32 times per turn of the event loop. */
  private schedule(): void {
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      for (let i = 0; i < 32 && !this.paused && !this.done; i++) {
        const chunk = this.next();
        if (!chunk) return this.destroy(new Error('recording ended early'));
        this.parser.write(chunk);
      }
      if (!this.paused && !this.done && !this.destroyed) this.schedule();
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    closeSync(this.fd);
    cb(err);
  }
}

const quiet: Reporter = { start() {}, progress() {}, warning() {}, result() {} } as unknown as Reporter;

/** `--path`: how much of the path runs (each a prefix of the next), to find what costs. */
type Path = 'decode' | 'stages' | 'all' | 'tar' | 'zstd' | 'map' | 'plain';

async function replay(file: string, path: Path, checksums: ChecksumAlgorithm, scratch: string): Promise<{ cpuMs: number; mainMs: number; gc: Record<string, [number, number]>; rssMb: number }> {
  const gc: Record<string, [number, number]> = {};
  const kinds: Record<number, string> = { [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge', [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental' };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const k = kinds[(e as unknown as { detail: { kind: number } }).detail.kind] ?? 'other';
      gc[k] ??= [0, 0];
      gc[k][0]++;
      gc[k][1] += e.duration;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const devNull = openSync('/dev/null', 'w');
  let rss = 0;
  const sampler = setInterval(() => (rss = Math.max(rss, process.memoryUsage.rss())), 20);
  const t0 = process.cpuUsage();
  const main0 = threadCpuMs();
  try {
    const map = path === 'map' || path === 'plain';
    const stages = path === 'decode' ? [] : takingStages({ manifest: true, checksums, shareCrc: map, limiter: null, progress: false, reporter: quiet, tally: newTally() });
    if (map) stages.push(chunkMapBuild());
    const target = join(scratch, 'tar');
    const sink =
      path === 'all' || path === 'zstd'
        ? new StdoutSink({ output: new FdOutput(devNull, '/dev/null'), ...(path === 'zstd' ? { compress: ZSTD } : {}) })
        : path === 'tar'
          ? new TarFilesSink({ target, sync: false })
          : path === 'plain'
            ? new DirectorySink({ target, sync: false })
            : new Writable({ objectMode: true, write: (_ev, _enc, cb) => cb() });
    if (sink instanceof TarFilesSink || sink instanceof DirectorySink) await sink.ready();
    await pipeline([new ReplaySource(file), ...stages, sink]);
  } finally {
    clearInterval(sampler);
    closeSync(devNull);
    await fs.rm(join(scratch, 'tar'), { recursive: true, force: true });
  }
  const u = process.cpuUsage(t0);
  const mainMs = threadCpuMs() - main0;
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return { cpuMs: (u.user + u.system) / 1000, mainMs, gc, rssMb: rss / 1048576 };
}

async function main(): Promise<void> {
  const runs = numArg('runs', 5);
  const path = arg('path', 'all') as Path;
  if (!['decode', 'stages', 'all', 'tar', 'zstd', 'map', 'plain'].includes(path)) throw new Error(`--path: decode, stages, all, tar, zstd, map or plain, not ${path}`);
  // The manifest check's algorithm (the CLI's --manifest-checksums; NONE: sizes only), to see what CRC32C costs.
  const checksums = arg('checksums', 'CRC32C') as ChecksumAlgorithm;
  const tmp = await makeTempDir('pgbb-receive-');
  let file = arg('replay', '');
  try {
    if (!file) {
      file = arg('record', '') || join(tmp, 'base-backup.rec');
      await record(file, numArg('scale', 20), checksums, arg('conninfo', ''));
    }
    const size = (await fs.stat(file)).size;
    const cpu: number[] = [];
    const main: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await replay(file, path, checksums, tmp);
      cpu.push(r.cpuMs);
      main.push(r.mainMs);
      const gcs = Object.entries(r.gc).map(([k, [n, ms]]) => `${k} ${n}× ${ms.toFixed(0)} ms`).join(', ');
      console.log(`replay ${i + 1}: ${(size / 1048576).toFixed(0)} MiB, CPU ${r.cpuMs.toFixed(0)} ms, main thread ${r.mainMs} ms (${((size / 1048576) / (r.cpuMs / 1000)).toFixed(0)} MiB/CPU s), GC: ${gcs}; peak RSS ${r.rssMb.toFixed(0)} MB`);
    }
    console.log(`median CPU ${median(cpu).toFixed(0)} ms, main thread ${median(main).toFixed(0)} ms`);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
