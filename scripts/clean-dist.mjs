// Empties dist/ before a build, so files of an earlier build (a Lua script of an older version, a
// module since removed) are not shipped or loaded. Node, not `rm -rf`: the build runs on Windows too.
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
