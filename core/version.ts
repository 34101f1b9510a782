/** The Handrail release this code is (kept equal to package.json's version by a test). */
export const HANDRAIL_VERSION = '0.1.0';
