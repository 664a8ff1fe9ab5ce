"""API key format and token claims: the pure parts of sign-in."""

import jwt

from shared.accounts import key_id_of
from shared.auth import ALGORITHM, Authenticator
from shared.permissions import Principal
from shared.settings import Settings
from tests.conftest import TEST_AUTH_SECRET


def test_the_key_id_is_read_from_a_key_whose_secret_holds_underscores() -> None:
    assert key_id_of("dsp_0a1b2c_se_cr_et") == "0a1b2c"
    assert [key_id_of(k) for k in ("", "dsp_", "dsp__x", "xyz_0a1b_secret", "dsp_0a1b")] == [None] * 5


def test_a_token_carries_who_and_expires() -> None:
    settings = Settings(auth_secret=TEST_AUTH_SECRET, auth_token_seconds=600)
    auth = Authenticator(settings, accounts=None)  # type: ignore[arg-type]  # issuing reads no store
    token = auth.issue(Principal("user", "dlh.andi", "kota-bengkulu", "officer", "DLH"), now=1_000_000)
    claims = jwt.decode(token.access_token, TEST_AUTH_SECRET, algorithms=[ALGORITHM],
                        options={"verify_exp": False})
    assert (claims["sub"], claims["tenant"], claims["role"], claims["agency"]) == \
        ("dlh.andi", "kota-bengkulu", "officer", "DLH")
    assert (claims["exp"] - claims["iat"], token.expires_in) == (600, 600)
    assert claims["jti"]
