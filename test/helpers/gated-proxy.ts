/**
 * A TCP proxy on 127.0.0.1 in front of a local server whose connections can be held one by
 * one: the server's replies kept back (a slow network towards the client) or the whole
 * connection frozen (a black hole: nothing passes either way, and no FIN), then released.
 * Used by the near-cache tests to put a reply behind an invalidation message deterministically
 * and to silence the subscriber connection without closing it.
 */

import net from 'node:net';

/** One client connection through the proxy. */
export interface GatedConnection {
  /** The client's port (its socket's local port, as `stream.localPort` in ioredis). */
  readonly clientPort: number;
  /** Whether the connection is still open on both sides. */
  readonly open: boolean;
  /** Bytes received from the client so far (forwarded or not). */
  readonly bytesFromClient: number;
  /** Bytes received from the server and not yet forwarded (held). */
  readonly heldFromServer: number;
  /** Keeps the server's bytes back until {@link GatedConnection.release}; the client's still pass. */
  holdReplies(): void;
  /** Nothing passes either way until {@link GatedConnection.release}; the sockets stay open. */
  freeze(): void;
  /** Forwards whatever was held, in order, and lets bytes pass again. */
  release(): void;
}

/** A running gated proxy. */
export interface GatedProxy {
  /** The port to give the client. */
  readonly port: number;
  /** Every connection accepted so far, oldest first. */
  readonly connections: readonly GatedConnection[];
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/** Starts a gated proxy to `127.0.0.1:targetPort`. */
export function startGatedProxy(targetPort: number): Promise<GatedProxy> {
  const sockets = new Set<net.Socket>();
  const connections: GatedConnection[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let holdDown = false; // server -> client
    let holdUp = false; // client -> server
    const heldDown: Buffer[] = [];
    const heldUp: Buffer[] = [];
    let fromClient = 0;
    let open = true;
    client.on('data', (chunk: Buffer) => {
      fromClient += chunk.length;
      if (holdUp) heldUp.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (holdDown) heldDown.push(chunk);
      else client.write(chunk);
    });
    const close = (): void => {
      open = false;
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    connections.push({
      clientPort: client.remotePort ?? 0,
      get open() {
        return open;
      },
      get bytesFromClient() {
        return fromClient;
      },
      get heldFromServer() {
        return heldDown.reduce((sum, chunk) => sum + chunk.length, 0);
      },
      holdReplies() {
        holdDown = true;
      },
      freeze() {
        holdDown = true;
        holdUp = true;
      },
      release() {
        holdDown = false;
        holdUp = false;
        for (const chunk of heldUp.splice(0)) upstream.write(chunk);
        for (const chunk of heldDown.splice(0)) client.write(chunk);
      },
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        connections,
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
