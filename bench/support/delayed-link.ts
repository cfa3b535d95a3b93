/**
 * The bench's two links to one server, set up and torn down here (root only):
 *
 *   root namespace (clients) ── veth pair ── namespace pgbb-bench-<pid> (server)
 *
 * - loopback: the client runs inside the server's namespace (`ip netns exec`)
 *   and connects to the server's own address — the kernel's loopback path;
 * - delayed: the client runs in the root namespace and crosses the veth pair
 *   with `tc netem delay <ms>` on both ends (a 2 × ms round trip; `limit`
 *   raised from netem's default of 1000 packets, which alone would cap a
 *   fast stream). A kernel built without netem (CONFIG_NET_SCH_NETEM unset,
 *   as on some VMs) gets the same round trip from a relay in this process
 *   (delay-relay.ts) whose window is the kernel's largest TCP receive buffer.
 *
 * Cleanup: close() deletes the namespace (the veth pair goes with it); an
 * exit without close() (an error, Ctrl-C) does the same from an exit hook.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { run } from '../../test/support/run';
import { startDelayRelay, type DelayRelay } from './delay-relay';

export interface DelayedLink {
  /** The server's namespace and address, for Cluster.create({ netns }). */
  netns: { name: string; address: string };
  /** 'netem' when the kernel delays the veth pair, 'relay' when delay-relay.ts does. */
  how: 'netem' | 'relay';
  oneWayMs: number;
  /** The host and port a client in the root namespace uses for the delayed path to the server's port. */
  delayed(serverPort: number): Promise<{ host: string; port: number }>;
  /** A command run inside the server's namespace (the loopback path). */
  inServerNamespace(cmd: string, args: string[]): [string, string[]];
  close(): Promise<void>;
}

const NETEM_LIMIT = 1_000_000;

export async function setUpDelayedLink(oneWayMs: number): Promise<DelayedLink> {
  const name = `pgbb-bench-${process.pid}`;
  const [inner, outer] = [`pgbbs${process.pid % 100000}`, `pgbbc${process.pid % 100000}`];
  const net = `10.213.${process.pid % 250}`;
  const address = `${net}.1`;
  const ip = (...args: string[]) => run('ip', args);
  const removeNamespace = () => spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  process.on('exit', removeNamespace);
  const relays: DelayRelay[] = [];
  try {
    await ip('netns', 'add', name);
    await ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', name);
    await ip('-n', name, 'addr', 'add', `${address}/24`, 'dev', inner);
    await ip('addr', 'add', `${net}.2/24`, 'dev', outer);
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    await ip('-n', name, 'link', 'set', inner, 'up');
    await ip('link', 'set', outer, 'up');
    const how = await addNetem(name, inner, outer, oneWayMs);
    return {
      netns: { name, address },
      how,
      oneWayMs,
      delayed: async (port) => {
        if (how === 'netem') return { host: address, port };
        const relay = await startDelayRelay({ host: address, port }, oneWayMs, largestReceiveWindow());
        relays.push(relay);
        return relay;
      },
      inServerNamespace: (cmd, args) => ['ip', ['netns', 'exec', name, cmd, ...args]],
      close: async () => {
        for (const r of relays) await r.close();
        removeNamespace();
        process.off('exit', removeNamespace);
      },
    };
  } catch (err) {
    removeNamespace();
    process.off('exit', removeNamespace);
    throw err;
  }
}

async function addNetem(ns: string, inner: string, outer: string, ms: number): Promise<'netem' | 'relay'> {
  const netem = ['root', 'netem', 'delay', `${ms}ms`, 'limit', String(NETEM_LIMIT)];
  try {
    await run('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', inner, ...netem]);
    await run('tc', ['qdisc', 'add', 'dev', outer, ...netem]);
    return 'netem';
  } catch (err) {
    const said = `${(err as Error).message} ${(err as { stderr?: string }).stderr ?? ''}`;
    if (/Specified qdisc kind is unknown|Unknown qdisc/i.test(said)) return 'relay';
    throw err;
  }
}

/** net.ipv4.tcp_rmem's maximum: how far a receiver's window can grow on this kernel. */
function largestReceiveWindow(): number {
  const max = Number(readFileSync('/proc/sys/net/ipv4/tcp_rmem', 'utf8').trim().split(/\s+/)[2]);
  return Number.isFinite(max) && max > 0 ? max : 6 * 1024 * 1024;
}
