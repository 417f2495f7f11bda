/** Types of `cluster-key-slot`, which ships none: Redis Cluster's CRC16 key-slot function. */
declare module 'cluster-key-slot' {
  /** The hash slot (0–16383) of a key, honouring its `{hash tag}`. */
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
