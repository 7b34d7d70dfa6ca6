// Test fixture for crates/kbgate-server/tests/oidc.rs: the certified `oidc-provider` (pinned in
// package.json to 8.x, the line that supports Node 20; 9.x wants Node 22) as a local OpenID Provider, with one confidential client (kbgate) and a few
// accounts. No dev interactions: the login and consent prompts are answered by the account the
// authorization request names in `login_hint` (kbgate sends the email typed on its sign-in
// page), so the test drives the whole flow over HTTP with no form to fill.
//
// Environment: OP_REDIRECT_URI (kbgate's callback), OP_CLIENT_ID, OP_CLIENT_SECRET.
// Prints "listening <issuer>" on stdout once it accepts connections.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

// login_hint → the claims this OP asserts for that account.
const ACCOUNTS = {
  // An ordinary, verified account of the bound domain.
  'alice@acme.com': { email: 'alice@acme.com', email_verified: true },
  // The OP does not vouch for this address.
  'bob@acme.com': { email: 'bob@acme.com', email_verified: false },
  // The nOAuth case: the tenant asserts (as verified) an address of a domain it is not bound to.
  'mallory@acme.com': { email: 'mallory@partner.com', email_verified: true },
};

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'op-rsa-1', use: 'sig', alg: 'RS256' };

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.OP_CLIENT_ID,
      client_secret: process.env.OP_CLIENT_SECRET,
      redirect_uris: [process.env.OP_REDIRECT_URI],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [signingKey] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // Scope claims in the ID token itself (as Entra ID, Google and Okta put `email` there).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      const claims = ACCOUNTS[id];
      if (!claims) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...claims }; } };
    },
  });
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    if (!req.url.startsWith('/interaction/')) {
      callback(req, res);
      return;
    }
    try {
      const details = await provider.interactionDetails(req, res);
      let result;
      if (details.prompt.name === 'login') {
        const hint = details.params.login_hint;
        if (!ACCOUNTS[hint]) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end(`no test account for login_hint ${hint}`);
          return;
        }
        result = { login: { accountId: hint } };
      } else {
        const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
        grant.addOIDCScope(details.params.scope);
        result = { consent: { grantId: await grant.save() } };
      }
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
    }
  });
  process.stdout.write(`listening ${issuer}\n`);
});
