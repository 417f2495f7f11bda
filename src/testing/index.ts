/**
 * `hermes-cache/testing`: the backend contract suite, for writers of backends. Run it from a
 * mocha spec; mocha is all it needs (it asserts with `node:assert/strict`, no assertion library):
 *
 * ```ts
 * import { registerBackendContract } from 'hermes-cache/testing';
 * registerBackendContract({ name: 'MyBackend', createBackend: () => new MyBackend(), createPeer: () => new MyBackend() });
 * ```
 *
 * @packageDocumentation
 */

export { type BackendContractOptions, registerBackendContract } from './contract.js';
