"""``serve-wss --dir``: never the CA's folder, and no dotfiles unless asked.

Real servers on 127.0.0.1 (port 0) and real TLS requests, through the Python API and the
``devcert`` executable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devcert import serve
from devcert.errors import UsageError
from tests.helpers import UNIT, CLIServer, https_get, make_server, one_error_line, raw_tls, run_devcert

REFUSAL = "which holds the CA's private key; serve a folder of only your site's files instead, such as ./public"


def raw_get(port: int, ca_file: Path, path: str) -> bytes:
    """GET ``path`` exactly as written (no client-side decoding or cleaning)."""
    return raw_tls(port, ca_file, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())


def site(root: Path) -> Path:
    """A site folder with the secrets a project folder typically holds next to its pages."""
    public = root / "public"
    (public / "a").mkdir(parents=True)
    (public / ".git").mkdir()
    (public / ".well-known" / "acme-challenge").mkdir(parents=True)
    (public / "index.html").write_text("<p>index</p>")
    (public / "a" / "app.js").write_text("console.log(1)")
    (public / "a" / "index.html").write_text("<p>a</p>")
    (public / ".env").write_text("SECRET=env")
    (public / ".git" / "config").write_text("SECRET=git")
    (public / ".git" / "index.html").write_text("SECRET=gitindex")
    (public / "a" / ".hidden").write_text("SECRET=hidden")
    (public / ".well-known" / "security.txt").write_text("Contact: mailto:security@example.test")
    (public / ".well-known" / "acme-challenge" / "tok").write_text("tok.thumb")
    (public / ".well-known" / ".secret").write_text("SECRET=wellknown")
    # plain names that lead to dotfiles: hidden by the resolved path, not only by the URL
    (public / "gitdir").symlink_to(public / ".git")
    (public / "env.txt").symlink_to(public / ".env")
    return public


# --- CAROOT is never served ------------------------------------------------------------------


def test_api_refuses_caroot_its_parents_and_inside(caroot: Path, tmp_path: Path) -> None:
    ca, _ = serve.ensure_certificate()  # a real CA, key and leaf in CAROOT
    assert (caroot / "rootCA-key.pem").exists() and (caroot / "leaves").is_dir()
    link = tmp_path / "site-link"
    link.symlink_to(caroot)
    cases = [
        (caroot, f"will not serve {caroot}: it is CAROOT, {REFUSAL}"),
        (tmp_path, f"will not serve {tmp_path}: it contains CAROOT {caroot}, {REFUSAL}"),
        (Path("/"), f"will not serve /: it contains CAROOT {caroot}, {REFUSAL}"),
        (link, f"will not serve {link} (that is {caroot}): it is CAROOT, {REFUSAL}"),
        (caroot / "leaves", f"will not serve {caroot / 'leaves'}: it is inside CAROOT {caroot}, {REFUSAL}"),
        (caroot / "leaves" / ".." / "leaves", None),  # spelled with ..: still inside
    ]
    for folder, message in cases:
        with pytest.raises(UsageError) as err:
            make_server(caroot, directory=folder)
        if message is not None:
            assert str(err.value) == message
        assert err.value.exit_code == 2


def test_api_refuses_a_parent_of_a_caroot_not_made_yet(caroot: Path, tmp_path: Path) -> None:
    """serve-wss makes the CA before it serves: a parent of the future CAROOT is refused too."""
    assert not caroot.exists()
    with pytest.raises(UsageError, match="it contains CAROOT"):
        serve.check_directory(tmp_path)


def test_a_sibling_folder_is_served(caroot: Path, tmp_path: Path) -> None:
    """Only the CA's folder and its parents are refused: caroot-other is not inside caroot."""
    serve.ensure_certificate()
    other = tmp_path / "caroot-other"
    other.mkdir()
    assert serve.check_directory(other) == other.resolve()


@pytest.mark.parametrize("which", ["caroot", "parent", "symlink"])
def test_cli_refuses_caroot_in_one_line(cli_env: dict, caroot: Path, tmp_path: Path, which: str) -> None:
    assert run_devcert("create", "localhost", env=cli_env, cwd=tmp_path).returncode == 0
    link = tmp_path / "link"
    link.symlink_to(caroot)
    folder = {"caroot": caroot, "parent": tmp_path, "symlink": link}[which]
    result = run_devcert("serve-wss", "--port", "0", "--dir", str(folder), env=cli_env, cwd=tmp_path, timeout=60 * UNIT)
    assert result.returncode == 2, result
    line = one_error_line(result.stderr)  # also: no traceback
    assert line.startswith(f"devcert: error: will not serve {folder}") and line.endswith(REFUSAL), line
    assert result.stdout == "" and "Serving" not in result.stderr


def test_cli_refuses_before_making_anything(cli_env: dict, caroot: Path, tmp_path: Path) -> None:
    """Refused while checking options: no CA is made for a server that will not start."""
    result = run_devcert("serve-wss", "--dir", ".", env=cli_env, cwd=tmp_path, timeout=60 * UNIT)
    assert result.returncode == 2, result
    assert f"will not serve {tmp_path}: it contains CAROOT {caroot}" in one_error_line(result.stderr)
    assert not caroot.exists()


def test_symlinks_into_caroot_answer_404(caroot: Path, tmp_path: Path) -> None:
    """A served folder may hold links into CAROOT; a request that resolves there gets 404."""
    public = site(tmp_path)
    (public / "ca-key.pem").symlink_to(caroot / "rootCA-key.pem")
    (public / "ca").symlink_to(caroot)
    for dotfiles in (False, True):
        server, ca_file = make_server(caroot, directory=public, dotfiles=dotfiles)
        key = (caroot / "rootCA-key.pem").read_bytes()
        with server.run_in_thread():
            for path in ("/ca-key.pem", "/ca/rootCA-key.pem", "/ca/rootCA.pem", "/ca/", "/ca/leaves/"):
                reply = raw_get(server.port, ca_file, path)
                assert reply.startswith(b"HTTP/1.1 404 "), (path, reply[:80])
                assert b"PRIVATE KEY" not in reply and key not in reply
            assert https_get(server.port, ca_file, "/a/app.js") == (200, b"console.log(1)")


# --- dotfiles --------------------------------------------------------------------------------

HIDDEN = ["/.env", "/.git/config", "/a/.hidden", "/.git/", "/.git", "/gitdir/config", "/env.txt",
          "/.well-known/.secret", "/a/../.env", "/./.env"]
#: the same files asked for with percent-encoded dots and slashes (a raw request line)
HIDDEN_ENCODED = ["/%2eenv", "/%2Eenv", "/.git%2fconfig", "/%2egit/config", "/a/%2ehidden", "/a%2f.hidden",
                  "/.well-known/%2esecret"]
SERVED = {"/": b"<p>index</p>", "/a/app.js": b"console.log(1)", "/a/": b"<p>a</p>",
          "/.well-known/security.txt": b"Contact: mailto:security@example.test",
          "/.well-known/acme-challenge/tok": b"tok.thumb"}


def test_dotfiles_answer_404_by_default(caroot: Path, tmp_path: Path) -> None:
    public = site(tmp_path)
    server, ca_file = make_server(caroot, directory=public)
    with server.run_in_thread():
        port = server.port
        missing = https_get(port, ca_file, "/no-such-file")
        assert missing[0] == 404
        for path in HIDDEN:
            # exactly what a missing file gets: nothing says the secret exists
            assert https_get(port, ca_file, path) == missing, path
        for path in HIDDEN + HIDDEN_ENCODED:
            reply = raw_get(port, ca_file, path)
            assert reply.startswith(b"HTTP/1.1 404 "), (path, reply[:80])
            assert b"SECRET" not in reply, path
        for path, body in SERVED.items():
            assert https_get(port, ca_file, path) == (200, body), path


def test_dotfiles_served_when_asked(caroot: Path, tmp_path: Path) -> None:
    public = site(tmp_path)
    server, ca_file = make_server(caroot, directory=public, dotfiles=True)
    with server.run_in_thread():
        port = server.port
        assert https_get(port, ca_file, "/.env") == (200, b"SECRET=env")
        assert https_get(port, ca_file, "/.git/config") == (200, b"SECRET=git")
        assert https_get(port, ca_file, "/gitdir/config") == (200, b"SECRET=git")
        assert https_get(port, ca_file, "/a/.hidden") == (200, b"SECRET=hidden")
        assert https_get(port, ca_file, "/.git/") == (200, b"SECRET=gitindex")
        assert raw_get(port, ca_file, "/%2eenv").endswith(b"\r\n\r\nSECRET=env")
        for path, body in SERVED.items():
            assert https_get(port, ca_file, path) == (200, body), path
        # still never outside the folder
        assert raw_get(port, ca_file, "/../caroot/rootCA-key.pem").startswith(b"HTTP/1.1 404 ")


def test_cli_dotfiles_flag(cli_env: dict, caroot: Path, tmp_path: Path) -> None:
    site(tmp_path)
    ca_file = caroot / "rootCA.pem"
    with CLIServer(["--dir", "public"], cli_env, cwd=tmp_path) as cli:
        assert cli.line("files:").endswith("(names starting with a dot answer 404; --dotfiles serves them)")
        assert https_get(cli.port, ca_file, "/.env")[0] == 404
        assert https_get(cli.port, ca_file, "/.git/config")[0] == 404
        assert https_get(cli.port, ca_file, "/a/.hidden")[0] == 404
        assert https_get(cli.port, ca_file, "/a/app.js") == (200, b"console.log(1)")
        assert https_get(cli.port, ca_file, "/.well-known/security.txt")[0] == 200
    assert cli.rc == 0 and "Traceback" not in cli.stderr
    with CLIServer(["--dir", "public", "--dotfiles"], cli_env, cwd=tmp_path) as cli:
        assert cli.line("files:").endswith("(names starting with a dot too)")
        assert https_get(cli.port, ca_file, "/.env") == (200, b"SECRET=env")
        assert https_get(cli.port, ca_file, "/.git/config") == (200, b"SECRET=git")
        assert https_get(cli.port, ca_file, "/a/.hidden") == (200, b"SECRET=hidden")
        assert https_get(cli.port, ca_file, "/a/app.js") == (200, b"console.log(1)")
    assert cli.rc == 0 and "Traceback" not in cli.stderr


def test_cli_dotfiles_without_dir_is_a_usage_error(cli_env: dict, caroot: Path, tmp_path: Path) -> None:
    result = run_devcert("serve-wss", "--dotfiles", env=cli_env, cwd=tmp_path, timeout=60 * UNIT)
    assert result.returncode == 2, result
    assert "--dotfiles applies only with --dir" in one_error_line(result.stderr)
    assert not caroot.exists()
