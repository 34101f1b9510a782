#!/usr/bin/env node
// The bundled CLI (scripts/bundle-cli.mjs): it starts in about two thirds of the time dist/cli/main.js takes.
import '../dist/cli-bundle/main.js';
