/**
 * `hermes-cache/testing`: the backend contract suite, for writers of backends. Run it from a
 * mocha spec:
 *
 * ```ts
 * import { registerBackendContract } from 'hermes-cache/testing';
 * registerBackendContract({ name: 'MyBackend', createBackend: () => new MyBackend(), createPeer: () => new MyBackend() });
 * ```
 *
 * @packageDocumentation
 */

export { type BackendContractOptions, registerBackendContract } from './contract.js';
