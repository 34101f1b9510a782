#!/usr/bin/env -S node --lite-mode --no-expose-wasm
// `handrail-agent ARGS` is `handrail agent ARGS` under the agent's Node flags (agent/node-flags.ts).
process.argv.splice(2, 0, 'agent');
await import('../dist/cli/main.js');
