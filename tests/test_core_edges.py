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


def test_no_arguments_prints_the_help_and_succeeds(cli_env, tmp_path):
    for args in ((), ("ca",)):
        res = run_devcert(*args, env=cli_env, cwd=tmp_path)
        assert res.returncode == 0
        assert res.stdout.startswith("Usage: devcert") and "error" not in res.stdout + res.stderr


def test_help_names_values_and_bad_numbers_are_plain(cli_env, tmp_path):
    res = run_devcert("create", "--help", env=cli_env, cwd=tmp_path)
    assert "--days DAYS" in res.stdout and "<int>" not in res.stdout
    res = run_devcert("list", "--expiring", "soon", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "not a whole number" in res.stderr and "Input should" not in res.stderr


def test_a_p12_without_password_creates_nothing(cli_env, caroot, tmp_path):
    res = run_devcert("create", "app.test", "--p12-file", "a.p12", env=cli_env, cwd=tmp_path, input="")
    assert res.returncode == 2 and "--p12-password" in res.stderr
    assert not caroot.exists() and not (tmp_path / "a.p12").exists()


def test_a_caroot_that_is_a_file_is_named(cli_env, caroot, tmp_path):
    caroot.parent.mkdir(parents=True, exist_ok=True)
    caroot.write_text("not a folder")
    res = run_devcert("create", "localhost", env=cli_env, cwd=tmp_path)
    assert res.returncode == 1 and "is a file, not a folder" in res.stderr
