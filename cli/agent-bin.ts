/** The bundled agent's process entry (see agent-main.ts). */
import { agentMain } from './agent-main.js';
import { runAsProcess } from './process-entry.js';

runAsProcess(agentMain);
