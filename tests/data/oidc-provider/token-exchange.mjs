// A real OAuth 2.0 authorization server for tests/identity/exchange.rs: panva's oidc-provider (npm,
// a certified OpenID Provider) with the RFC 8693 token-exchange grant registered through its
// documented `registerGrantType` hook. oidc-provider does the protocol: client
// authentication (client_secret_basic with RFC 6749 §2.3.1's form-urlencoding), parameter
// parsing and checks, RFC 6749 §5.2 errors, access-token minting (an RS256 JWT for the
// resource server) and its `expires_in`. The grant handler here only checks the subject
// token: an RS256 JWT of the cluster's issuer, verified with `jose` (oidc-provider's own
// dependency) against the cluster's JWKS, with the expected audience, unexpired.
//
// Environment: OIDC_PROVIDER_DIR (where `npm install oidc-provider` put node_modules),
// PORT, CLIENT_SECRET, CLUSTER_JWKS (JSON), CLUSTER_ISSUER, SUBJECT_AUDIENCE.
// Prints "listening" on stdout once the port is open.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const dir = process.env.OIDC_PROVIDER_DIR;
const load = (pkg, entry) => import(pathToFileURL(join(dir, 'node_modules', pkg, entry)).href);
const { default: Provider, errors } = await load('oidc-provider', 'lib/index.js');
const jose = await load('jose', 'dist/webapi/index.js');

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const clusterKeys = jose.createLocalJWKSet(JSON.parse(process.env.CLUSTER_JWKS));
const grantType = 'urn:ietf:params:oauth:grant-type:token-exchange';
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await jose.exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'as-1' };

const registry = {
  scope: 'repository:team/app:pull',
  audience: 'registry',
  accessTokenTTL: 3600,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'RS256' } },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'registry-client',
    client_secret: process.env.CLIENT_SECRET,
    grant_types: [grantType],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'repository:team/app:pull',
  }],
  jwks: { keys: [signingKey] },
  scopes: ['repository:team/app:pull'],
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:registry',
      getResourceServerInfo: () => registry,
      useGrantedResource: () => true,
    },
  },
  extraTokenClaims: (ctx, token) => token.extra,
});

async function tokenExchange(ctx) {
  const { params, client } = ctx.oidc;
  if (params.subject_token_type !== 'urn:ietf:params:oauth:token-type:jwt') {
    throw new errors.InvalidRequest('unsupported subject_token_type');
  }
  if (params.audience !== registry.audience) {
    throw new errors.InvalidTarget('unknown audience');
  }
  let subject;
  try {
    ({ payload: subject } = await jose.jwtVerify(params.subject_token, clusterKeys, {
      issuer: process.env.CLUSTER_ISSUER,
      audience: process.env.SUBJECT_AUDIENCE,
      algorithms: ['RS256'],
    }));
  } catch {
    throw new errors.InvalidGrant('subject token rejected');
  }
  const scope = (params.scope || '').split(' ').filter((s) => registry.scope.split(' ').includes(s)).join(' ');
  // An access token for the pod's service account (its `sub`), the client as the actor.
  const token = new provider.AccessToken({
    accountId: subject.sub,
    client,
    grantId: `token-exchange-${subject.jti || Date.now()}`,
    gty: 'token_exchange',
    scope: scope || undefined,
  });
  token.resourceServer = new provider.ResourceServer('urn:registry', registry);
  token.extra = { act: { sub: client.clientId } };
  const value = await token.save();
  ctx.body = {
    access_token: value,
    issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}

provider.registerGrantType(grantType, tokenExchange,
  ['audience', 'resource', 'scope', 'requested_token_type', 'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type'],
  ['audience', 'resource']);

const server = provider.listen(port, '127.0.0.1', () => console.log('listening'));
// Bounded: the test kills it, and it stops by itself after two minutes whatever happens.
setTimeout(() => server.close(() => process.exit(0)), 120_000).unref();
