/**
 * Counting proxies in front of every node of a test cluster, and the `natMap` that sends all of
 * an ioredis `Cluster`'s traffic through them (CLUSTER SLOTS reports the nodes' own addresses;
 * the map turns each into its proxy's).
 *
 * Each node gets two proxies in a row: the RESP-counting proxy of the benchmarks (commands by
 * name and round trips, per node), and in front of it a plain one that numbers, across all
 * nodes, the first bytes each side sends after a reset: whether requests to several masters
 * were all sent before any of them was answered (sent in parallel) or one after another.
 */

import type { NatMap } from 'ioredis';
import { type RespCountingProxy, startRespCountingProxy } from '../../scripts/bench/peers/resp-proxy.js';
import type { RedisCluster } from './redis-cluster.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/** The proxies of one node. */
export interface NodeProxy {
  /** The node's own port. */
  readonly nodePort: number;
  /** The port clients are mapped to. */
  readonly port: number;
  /** Commands and round trips sent to this node since the last reset. */
  readonly counter: RespCountingProxy;
  /**
   * Since the last reset, the sequence number (shared by all nodes) of the first chunk the
   * clients sent this node, and of the first chunk it answered; `undefined` if none.
   */
  firstSent: number | undefined;
  firstAnswered: number | undefined;
}

/** The proxies of a whole cluster. */
export interface ClusterProxies {
  readonly nodes: readonly NodeProxy[];
  /** Startup nodes for ioredis (the proxies). */
  readonly startupNodes: ReadonlyArray<{ host: string; port: number }>;
  /** For `clusterOptions.natMap`: every node's address mapped to its proxy. */
  readonly natMap: NatMap;
  /** The proxies of the node on `nodePort`. */
  of(nodePort: number): NodeProxy;
  /** Clears every count and sequence number. */
  reset(): void;
  close(): Promise<void>;
}

/** Starts the proxies of every node of `cluster`. */
export async function proxyCluster(cluster: RedisCluster): Promise<ClusterProxies> {
  let sequence = 0;
  const outers: TcpProxy[] = [];
  const nodes: NodeProxy[] = [];
  for (const { port: nodePort } of cluster.nodes) {
    const counter = await startRespCountingProxy(nodePort);
    const node: NodeProxy = { nodePort, port: 0, counter, firstSent: undefined, firstAnswered: undefined };
    const outer = await startTcpProxy(counter.port, () => ({
      fromClient() {
        node.firstSent ??= ++sequence;
      },
      fromServer() {
        node.firstAnswered ??= ++sequence;
      },
    }));
    outers.push(outer);
    nodes.push(Object.assign(node, { port: outer.port }));
  }
  const natMap: NatMap = Object.fromEntries(nodes.map((n) => [`127.0.0.1:${n.nodePort}`, { host: '127.0.0.1', port: n.port }]));
  return {
    nodes,
    startupNodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    natMap,
    of(nodePort) {
      const node = nodes.find((n) => n.nodePort === nodePort);
      if (node === undefined) throw new Error(`no proxy for node ${nodePort}`);
      return node;
    },
    reset() {
      for (const node of nodes) {
        node.counter.reset();
        node.firstSent = undefined;
        node.firstAnswered = undefined;
      }
    },
    close: async () => {
      await Promise.all(outers.map((outer) => outer.close()));
      await Promise.all(nodes.map((n) => n.counter.close()));
    },
  };
}
