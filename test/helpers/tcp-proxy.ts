/**
 * A TCP proxy on 127.0.0.1 in front of a local server, with a hook on each direction: the
 * plumbing under the counting proxies of the tests and benchmarks.
 */

import net from 'node:net';

/** Per-connection hooks, created for each client connection. */
export interface ProxyConnection {
  /** Bytes the client sent towards the server (already forwarded). */
  fromClient?(chunk: Buffer): void;
  /** Bytes the server sent towards the client (already forwarded). */
  fromServer?(chunk: Buffer): void;
}

/** A running proxy. */
export interface TcpProxy {
  /** The port to give the client. */
  readonly port: number;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:targetPort`; `connect()` gives the hooks of each connection. */
export function startTcpProxy(targetPort: number, connect: () => ProxyConnection): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const hooks = connect();
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      hooks.fromClient?.(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      hooks.fromServer?.(chunk);
    });
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => {
              done();
            });
          }),
      });
    });
  });
}
