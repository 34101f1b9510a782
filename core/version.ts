/** The Handrail release this code is (kept equal to package.json's version by a test). */
export const HANDRAIL_VERSION = '0.1.0';

/**
 * The oldest agent release this coordinator serves (core/version-compat.ts). Raise it only when
 * the coordinator drops something older agents need; the refusal tells them to upgrade.
 */
export const MIN_AGENT_VERSION = '0.1.0';

/** The oldest coordinator release this agent works with. */
export const MIN_COORDINATOR_VERSION = '0.1.0';
