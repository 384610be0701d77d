"""Checks of the app's sign-in configuration: the app fails closed.

Single sign-on (OIDC through Streamlit's st.login) needs an [auth] section in
.streamlit/secrets.toml; the password-less demo sign-in must be chosen explicitly
(ANALYTICS_SIGN_IN=demo). A missing or unreadable secrets file, a misspelt section or a
missing key stops the app with a message that names the problem; it never falls back to
the demo sign-in. auth_problem() takes the secrets as a mapping (or the exception raised
while reading them) so that it can be tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping

# Streamlit's st.login settings: these at [auth] level, the provider ones at [auth] or in
# each [auth.<provider>] section.
AUTH_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
DEMO_DOMAIN = ".demo.example.org"  # demo.demo_email: the demo community's users, and only they


def auth_problem(secrets: Mapping | Exception | None, path: str = ".streamlit/secrets.toml") -> str | None:
    """None when [auth] is complete; otherwise what is wrong, in words an operator can act on."""
    hint = (f" Configure single sign-on in {path} (see .streamlit/secrets.toml.example and the README), "
            "or run the demo sign-in on purpose with ANALYTICS_SIGN_IN=demo.")
    if isinstance(secrets, Exception):
        return f"Sign-in is not configured: {path} could not be read ({_reason(secrets)})." + hint
    if not secrets:
        return f"Sign-in is not configured: {path} is missing or empty." + hint
    if "auth" not in secrets:
        near = [k for k in secrets if str(k).strip().lower() in ("auth", "oidc", "login", "auths")]
        found = f" It has [{near[0]}]; the section must be named [auth] (lower case)." if near else ""
        return f"Sign-in is not configured: {path} has no [auth] section.{found}" + hint
    auth = secrets["auth"]
    if not isinstance(auth, Mapping):
        return f"Sign-in is not configured: [auth] in {path} must be a section, not a value." + hint
    missing = [k for k in AUTH_KEYS if not _filled(auth.get(k))]
    providers = {k: v for k, v in auth.items() if isinstance(v, Mapping)}
    if providers:
        for name, provider in providers.items():
            missing += [f"{name}.{k}" for k in PROVIDER_KEYS if not _filled(provider.get(k, auth.get(k)))]
    else:
        missing += [k for k in PROVIDER_KEYS if not _filled(auth.get(k))]
    if missing:
        return (f"Sign-in is not configured: [auth] in {path} lacks {', '.join(missing)}." + hint)
    return None


def _filled(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def identity_problem(claims: Mapping, allow_unverified: bool) -> str | None:
    """None when the signed-in identity may be matched to a user by its e-mail; else why not."""
    email = claims.get("email")
    if not email:
        return "Your identity provider did not send an e-mail address, so no user can be matched."
    verified = claims.get("email_verified")
    if verified is True or (isinstance(verified, str) and verified.lower() == "true"):
        return None
    if allow_unverified and verified is None:
        return None  # a provider that never sends the claim, relaxed on purpose
    return (f"Your identity provider has not verified the e-mail address {email}, so it cannot be "
            "matched to a user. Verify the address with your provider and sign in again.")


def is_demo_user(email: str) -> bool:
    """A user the demo sign-in may offer: an address in the demo community's domain
    (ANALYTICS_DEMO_DOMAIN, default .demo.example.org)."""
    import os

    domain = (os.environ.get("ANALYTICS_DEMO_DOMAIN") or DEMO_DOMAIN).lower()
    return email.lower().endswith(domain)
