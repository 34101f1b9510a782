/**
 * Node flags the agent runs with (bin/handrail-agent.js carries the same in its #! line).
 * V8's lite mode drops the optimizing compilers and allocates feedback lazily: about 5 MB less
 * idle RSS (bench/agent-idle.ts). The agent's hot paths are native (spawn, pipes, SHA-256, TLS,
 * RSA), so output throughput stays far above what one stream carries (bench/runner-throughput.ts).
 */
// --no-expose-wasm: lite mode turns WebAssembly off anyway; saying so keeps V8 from warning at every start.
export const AGENT_NODE_FLAGS: readonly string[] = ['--lite-mode', '--no-expose-wasm'];
