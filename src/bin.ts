#!/usr/bin/env node
/**
 * The `hermes` executable: see `hermes --help` and {@link main} in `cli.ts`.
 *
 * @module
 */
import { run } from './backend/redis/cli.js';

// `hermes scripts | head`: a closed pipe ends the output, not the process with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

await run(process.argv.slice(2));
