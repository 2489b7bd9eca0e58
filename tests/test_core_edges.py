"""Edge cases where a careless tool would lose a user's data."""

from __future__ import annotations

from conftest import run_devcert


def test_an_orphan_ca_key_is_never_overwritten(cli_env, caroot, tmp_path):
    caroot.mkdir(parents=True)
    key = caroot / "rootCA-key.pem"
    key.write_bytes(b"someone's key\n")
    res = run_devcert("create", "localhost", env=cli_env, cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.startswith("devcert: error: ") and "rootCA-key.pem exists" in res.stderr
    assert key.read_bytes() == b"someone's key\n"
    assert not (caroot / "rootCA.pem").exists()


def test_a_folder_as_output_file_is_refused(cli_env, tmp_path):
    res = run_devcert("create", "localhost", "--cert-file", "sub/", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2 and "not a folder" in res.stderr
    (tmp_path / "out").mkdir()
    res = run_devcert("create", "localhost", "--key-file", "out", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2 and "not a folder" in res.stderr
    assert not list((tmp_path / "out").iterdir())


def test_p256_keys_are_written_exactly_as_cryptography_writes_them():
    # devcert writes P-256 PKCS#8 itself (to skip importing cryptography's serialization
    # package at start-up); it must be byte-identical to the library's own encoding.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from devcert import keys

    for _ in range(300):
        key = ec.generate_private_key(ec.SECP256R1())
        reference = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        assert keys.private_pem(key) == reference
    rsa_key = keys.generate("rsa")
    assert serialization.load_pem_private_key(keys.private_pem(rsa_key), None).key_size == 2048
