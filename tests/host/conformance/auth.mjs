// Loaded into the conformance suite's Node (NODE_OPTIONS=--import=…) for the proxy's TCP
// listener, which wants a bearer token: every HTTP request the suite makes — through fetch (the
// SDK's client) or undici's request (its raw header scenarios) — carries `Authorization: Bearer
// $CONFORMANCE_TOKEN`, as a configured client's would. Nothing else changes. Both go through
// undici's global dispatcher, so that is where the header is added.
import { createRequire } from 'node:module';

const token = process.env.CONFORMANCE_TOKEN;
if (!token) throw new Error('auth.mjs: CONFORMANCE_TOKEN is not set');
// The suite's own undici (the one its raw requests use).
const require = createRequire(process.env.CONFORMANCE_CLI);
const { Agent, setGlobalDispatcher } = require('undici');

function withAuth(headers) {
  const value = `Bearer ${token}`;
  if (headers == null) return { authorization: value };
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'authorization') return headers;
    }
    return [...headers, 'authorization', value];
  }
  if (Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) return headers;
  return { ...headers, authorization: value };
}

class AuthAgent extends Agent {
  dispatch(opts, handler) {
    return super.dispatch({ ...opts, headers: withAuth(opts.headers) }, handler);
  }
}
setGlobalDispatcher(new AuthAgent());
