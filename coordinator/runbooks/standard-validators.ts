/**
 * The document kinds a Handrail runbooks directory holds besides runbooks, wired to their
 * validators: what the coordinator, `runbooks lint` and `policy explain` load with. The loader
 * itself takes validators as a parameter and does not depend on the policy module.
 */
import { validatePolicy, type Policy } from '../policy/policy.js';
import type { LoaderOptions } from './loader.js';

export const STANDARD_LOADER_OPTIONS: LoaderOptions<Policy> = { validators: { Policy: validatePolicy } };
