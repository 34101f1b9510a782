/**
 * The portal's static assets (one stylesheet, one script): their URLs carry a digest of their
 * content, so a browser may cache them for good and still gets a new version at once.
 */
import { createHash } from 'node:crypto';
import { Hono, type Env } from 'hono';
import { STYLESHEET } from './stylesheet.js';
import { LIVE_OUTPUT_SCRIPT } from './live-output.js';

const version = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

const ASSETS = {
  '/static/portal.css': { body: STYLESHEET, type: 'text/css; charset=utf-8' },
  '/static/live-output.js': { body: LIVE_OUTPUT_SCRIPT, type: 'text/javascript; charset=utf-8' },
} as const;

export type AssetPath = keyof typeof ASSETS;

/** The URL a page links to. */
export function assetUrl(path: AssetPath): string {
  return `${path}?v=${version(ASSETS[path].body)}`;
}

export function staticRoutes<E extends Env>(): Hono<E> {
  const app = new Hono<E>();
  for (const [path, a] of Object.entries(ASSETS)) {
    app.get(path, (c) =>
      c.body(a.body, 200, {
        'content-type': a.type,
        'cache-control': c.req.query('v') === version(a.body) ? 'public, max-age=31536000, immutable' : 'no-cache',
        'x-content-type-options': 'nosniff',
      }),
    );
  }
  return app;
}
