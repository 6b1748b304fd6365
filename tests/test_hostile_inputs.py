"""Every CLI command against hostile input: one clear line, a non-zero exit, nothing changed."""

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agentops.audit.sealer import wait_until_sealed
from agentops.audit.service import seal_all
from agentops.cli.app import run
from agentops.settings import get_settings
from factories import BACKUP, OWNER, degraded_fleet

HUGE = "99999999999999999999"
# 391 bytes that expand to 9^9 strings if aliases are followed.
ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)
NOT_UTF8 = "\udcff\udcfe"  # how Python hands over argv bytes the locale cannot decode
LONG_URL = "http://127.0.0.1:9/" + "a" * 120_000
MARKUP = "[/]"
ESCAPE = "\x1b[2J\x1b]0;owned\x07"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Junk files of every kind a user might hand over by mistake."""
    binary = tmp_path / "junk.json"
    binary.write_bytes(b"\x00\x01\xff\xfe binary junk")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    broken_yaml = tmp_path / "broken.yaml"
    broken_yaml.write_text("triggers: [unclosed\n  - {\n")
    all_bad = tmp_path / "all_bad.jsonl"
    all_bad.write_text('{"id": "x", "messages": []}\n')
    # Values orjson refuses, or no database stores: each record is rejected, so is the import.
    not_json = tmp_path / "not_json.jsonl"
    not_json.write_text(
        '{"id": "x", "messages": [{"role": "user", "content": "hi", "score": NaN}]}\n'
        '{"id": "y", "messages": [{"role": "user", "content": [{"n": -Infinity}]}]}\n'
        '{"id": "x\\u0000", "messages": [{"role": "user", "content": "hi"}]}\n'
        '{"id": "z", "latency_ms": 99999999999, "messages": [{"role": "user", "content": "hi"}]}\n'
    )
    markup_yaml = tmp_path / "markup.yaml"
    markup_yaml.write_text(f"name: '{MARKUP}'\nversion: {HUGE}\ncriteria: {ESCAPE!r}\n")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # nobody ever writes: opening it for reading would block forever
    fifo_jsonl = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo_jsonl)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    deep_json = tmp_path / "deep.jsonl"
    deep_json.write_text('{"id": "d", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    deep_array = tmp_path / "deep.json"
    deep_array.write_text("[" * 100_000 + "]" * 100_000)
    return {
        "fifo": str(fifo),
        "fifo_jsonl": str(fifo_jsonl),
        "bomb": str(bomb),
        "deep_yaml": str(deep_yaml),
        "deep_json": str(deep_json),
        "deep_array": str(deep_array),
        "binary": str(binary),
        "empty": str(empty),
        "broken_yaml": str(broken_yaml),
        "all_bad": str(all_bad),
        "not_json": str(not_json),
        "markup_yaml": str(markup_yaml),
        "folder": str(folder),
        "missing": str(tmp_path / "nope.jsonl"),
    }


def owned_by(owner: str) -> list[str]:
    """Register-command options with this owner and the usual backup."""
    return ["--owner", owner, "--backup", BACKUP]


AS_OWNER = ["--as", OWNER, "--reason", "x"]
NEW_PEOPLE = ["--owner", "a@x.io", "--backup", "b@x.io"]
HOSTILE: list[tuple[str, list[str]]] = [
    ("agents show markup", ["agents", "show", MARKUP]),
    ("agents show escape", ["agents", "show", ESCAPE]),
    ("agents register markup name", ["agents", "register", f"x{MARKUP}", *NEW_PEOPLE]),
    ("agents register control name", ["agents", "register", "x\x07y", *NEW_PEOPLE]),
    ("agents register markup email", ["agents", "register", "ok", *owned_by(f"{MARKUP}@x.io")]),
    ("agents register escape email", ["agents", "register", "ok", *owned_by(f"a{ESCAPE}@x.io")]),
    ("agents register same people", ["agents", "register", "ok", *owned_by(BACKUP)]),
    ("agents add-version markup", ["agents", "add-version", "airline", f"v{MARKUP}"]),
    ("agents add-version huge label", ["agents", "add-version", "airline", "v" * 500]),
    ("agents add-version unknown agent", ["agents", "add-version", MARKUP, "v9"]),
    ("import binary", ["import", "{binary}", "--agent", "airline", "--version", "v2"]),
    ("import empty", ["import", "{empty}", "--agent", "airline", "--version", "v2"]),
    ("import folder", ["import", "{folder}", "--agent", "airline", "--version", "v2"]),
    ("import missing", ["import", "{missing}", "--agent", "airline", "--version", "v2"]),
    ("import unknown agent", ["import", "{empty}", "--agent", MARKUP, "--version", "v2"]),
    ("import markup version", ["import", "{binary}", "--agent", "airline", "--version", MARKUP]),
    ("sample inf hours", ["sample", "airline", "--hours", "inf"]),
    ("sample nan hours", ["sample", "airline", "--hours", "nan"]),
    ("sample negative hours", ["sample", "airline", "--hours", "-1"]),
    ("sample huge hours", ["sample", "airline", "--hours", "1e308"]),
    ("sample huge max", ["sample", "airline", "--max", HUGE]),
    ("sample negative seed", ["sample", "airline", "--seed", "-1"]),
    ("sample far future end", ["sample", "airline", "--end", "2999-01-01"]),
    ("sample end at year one", ["sample", "airline", "--end", "0001-01-01", "--hours", "100"]),
    ("sample junk end", ["sample", "airline", "--end", "tomorrow-ish"]),
    ("evaluate markup", ["evaluate", MARKUP]),
    ("rubric add binary", ["rubric", "add", "{binary}"]),
    ("rubric add broken", ["rubric", "add", "{broken_yaml}"]),
    ("rubric add markup", ["rubric", "add", "{markup_yaml}"]),
    ("rubric add folder", ["rubric", "add", "{folder}"]),
    ("triggers check binary", ["triggers", "check", "{binary}"]),
    ("triggers check broken", ["triggers", "check", "{broken_yaml}"]),
    ("triggers register markup", ["triggers", "register", "{markup_yaml}"]),
    ("triggers register missing", ["triggers", "register", "{missing}"]),
    ("review next markup reviewer", ["review", "next", "--as", f"{MARKUP}@x.io"]),
    ("review next unknown agent", ["review", "next", "--as", "r@x.io", "--agent", MARKUP]),
    ("review submit huge id", ["review", "submit", HUGE, "--as", "r@x.io"]),
    ("review submit zero", ["review", "submit", "0", "--as", "r@x.io"]),
    ("review submit unknown item", ["review", "submit", "7", "--as", "r@x.io"]),
    ("review show negative", ["review", "show", "-5"]),
    ("review status unknown agent", ["review", "status", "--agent", ESCAPE]),
    ("actions show huge", ["actions", "show", HUGE]),
    ("actions show inf", ["actions", "show", "inf"]),
    ("actions show unknown", ["actions", "show", "2147483647"]),
    ("actions list bad status", ["actions", "list", "--status", MARKUP]),
    ("actions list unknown agent", ["actions", "list", "--agent", MARKUP]),
    ("actions run huge", ["actions", "run", HUGE]),
    ("actions run unknown", ["actions", "run", "99", "--deployer-url", "http://127.0.0.1:9"]),
    ("actions request unknown", ["actions", "request", "99"]),
    ("actions cancel no reason", ["actions", "cancel", "99", "--as", OWNER, "--reason", ""]),
    ("actions redeploy markup version", ["actions", "redeploy", "airline", MARKUP, *AS_OWNER]),
    ("actions redeploy unknown agent", ["actions", "redeploy", ESCAPE, "v1", *AS_OWNER]),
    ("approve huge", ["approve", HUGE, "--as", OWNER]),
    ("approve unknown action", ["approve", "42", "--as", OWNER]),
    ("approve no identity", ["approve", "1"]),
    ("reject empty reason", ["reject", "42", "--as", BACKUP, "--reason", ""]),
    ("audit log zero", ["audit", "log", "--limit", "0"]),
    ("audit log huge", ["audit", "log", "--limit", HUGE]),
    ("audit export folder", ["audit", "export", "-o", "{folder}"]),
    ("audit export bad format", ["audit", "export", "-o", "{missing}", "--format", MARKUP]),
    ("review estimate unknown agent", ["review", "estimate", MARKUP]),
    ("review estimate unknown version", ["review", "estimate", "airline", "--version", MARKUP]),
    ("review agreement unknown agent", ["review", "agreement", "--agent", ESCAPE]),
    ("review dispute huge", ["review", "dispute", HUGE, *AS_OWNER]),
    ("review dispute unknown item", ["review", "dispute", "7", *AS_OWNER]),
    ("review dispute empty reason", ["review", "dispute", "7", "--as", OWNER, "--reason", ""]),
    ("agents set-rubric unknown rubric", ["agents", "set-rubric", "airline", MARKUP]),
    ("agents set-rubric unknown agent", ["agents", "set-rubric", ESCAPE, "support"]),
    ("sample plan binary", ["sample", "airline", "--plan", "{binary}"]),
    ("sample plan broken", ["sample", "airline", "--plan", "{broken_yaml}"]),
    ("sample plan markup", ["sample", "airline", "--plan", "{markup_yaml}"]),
    ("sample plan missing", ["sample", "airline", "--plan", "{missing}"]),
    ("people add bad role", ["people", "add", "p@x.io", "--role", MARKUP]),
    ("people add markup email", ["people", "add", f"{MARKUP}@x.io", "--role", "reviewer"]),
    ("people add escape email", ["people", "add", f"a{ESCAPE}@x.io", "--role", "reviewer"]),
    ("people login-link unknown", ["people", "login-link", "nobody@x.io"]),
    ("people login-link escape", ["people", "login-link", ESCAPE]),
    ("people login-link zero minutes", ["people", "login-link", OWNER, "--minutes", "0"]),
    ("people login-link huge minutes", ["people", "login-link", OWNER, "--minutes", HUGE]),
    ("people login-link bad base", ["people", "login-link", OWNER, "--base-url", "javascript:x"]),
    ("serve bad port", ["serve", "--port", "0"]),
    ("serve sign-in unknown person", ["serve", "--sign-in", "nobody@x.io"]),
    ("demo negative seed", ["demo", "--seed", "-1"]),
    ("report junk since", ["report", "--since", "30x", "-o", "{missing}"]),
    ("report markup agent", ["report", "--agent", MARKUP, "-o", "{missing}"]),
    ("report inf sla", ["report", "--review-sla-hours", "inf", "-o", "{missing}"]),
    ("report into a folder", ["report", "-o", "{folder}"]),
    ("audit verify-export junk dir", ["audit", "verify-export", "{folder}"]),
    ("audit verify missing checkpoints", ["audit", "verify", "--checkpoints", "{missing}"]),
    ("audit export future until", ["audit", "export", "-o", "{folder}", "--until", "29999-01-01"]),
    ("audit archive junk date", ["audit", "archive", "--before", ESCAPE, "-o", "{folder}"]),
    ("audit purge-confirm junk", ["audit", "purge-confirm", "--archive", "{folder}"]),
    ("sweep junk option", ["sweep", "--deployer", MARKUP]),
    ("fake-services huge port", ["fake-services", "--port", HUGE]),
    ("fake-services bad live", ["fake-services", "--port", "8799", "--live", MARKUP]),
    ("serve port zero", ["serve", "--port", "0"]),
    ("db upgrade extra argument", ["db", "upgrade", ESCAPE]),
    ("unknown command", ["bogus", MARKUP]),
    ("unknown option", ["agents", "list", "--colour", ESCAPE]),
    # Non-UTF-8 argument bytes.
    ("non-utf8 agent name", ["agents", "show", NOT_UTF8]),
    ("non-utf8 reviewer", ["review", "next", "--as", f"r{NOT_UTF8}@x.io"]),
    ("non-utf8 file", ["triggers", "check", f"x{NOT_UTF8}.yaml"]),
    ("non-utf8 option name", [f"--{NOT_UTF8}"]),
    # Files that are not regular files: a device, and a FIFO nobody writes to.
    ("rubric add dev zero", ["rubric", "add", "/dev/zero"]),
    ("triggers check dev zero", ["triggers", "check", "/dev/zero"]),
    ("sample plan dev zero", ["sample", "airline", "--plan", "/dev/zero"]),
    ("import dev zero", ["import", "/dev/zero", "--agent", "airline", "--version", "v2"]),
    ("audit export key dev zero", ["audit", "export", "-o", "{missing}", "--key", "/dev/zero"]),
    (
        "audit verify-export key dev zero",
        ["audit", "verify-export", "{folder}", "--public-key", "/dev/zero"],
    ),
    ("triggers check fifo", ["triggers", "check", "{fifo}"]),
    ("rubric add fifo", ["rubric", "add", "{fifo}"]),
    ("sample plan fifo", ["sample", "airline", "--plan", "{fifo}"]),
    ("import fifo", ["import", "{fifo_jsonl}", "--agent", "airline", "--version", "v2"]),
    ("audit export key fifo", ["audit", "export", "-o", "{missing}", "--key", "{fifo}"]),
    # Deployer URLs with control characters, or 120 KB long.
    ("deployer url escape", ["actions", "run", "1", "--deployer-url", f"http://x/{ESCAPE}"]),
    ("deployer url newline", ["sweep", "--deployer-url", "http://x/\nHost: evil"]),
    ("deployer url 120 KB", ["actions", "run", "1", "--deployer-url", LONG_URL]),
    ("deployer url 120 KB sweep", ["sweep", "--deployer-url", LONG_URL]),
    # Deeply nested JSON and YAML.
    ("triggers check deep yaml", ["triggers", "check", "{deep_yaml}"]),
    ("rubric add deep yaml", ["rubric", "add", "{deep_yaml}"]),
    ("sample plan deep yaml", ["sample", "airline", "--plan", "{deep_yaml}"]),
    ("import deep json array", ["import", "{deep_array}", "--agent", "airline", "--version", "v2"]),
    # The YAML alias bomb.
    ("triggers check alias bomb", ["triggers", "check", "{bomb}"]),
    ("triggers register alias bomb", ["triggers", "register", "{bomb}"]),
    ("triggers backtest alias bomb", ["triggers", "backtest", "{bomb}", "--agent", "airline"]),
    ("rubric add alias bomb", ["rubric", "add", "{bomb}"]),
    ("sample plan alias bomb", ["sample", "airline", "--plan", "{bomb}"]),
]

# Settings from the environment that every command reads.
HOSTILE_ENV: list[tuple[str, dict[str, str], list[str]]] = [
    ("agent channels bad json", {"AGENTOPS_SLACK_AGENT_CHANNELS": "{bad"}, ["agents", "list"]),
    ("agent channels not a map", {"AGENTOPS_SLACK_AGENT_CHANNELS": "[1]"}, ["audit", "log"]),
    (
        "agent channels deep json",
        {"AGENTOPS_SLACK_AGENT_CHANNELS": "[" * 50_000},
        ["agents", "list"],
    ),
    ("trusted proxies junk", {"AGENTOPS_WEB_TRUSTED_PROXIES": "10.0.0.0/8,x"}, ["agents", "list"]),
    ("deployer url env escape", {"AGENTOPS_DEPLOYER_URL": f"http://x/{ESCAPE}"}, ["sweep"]),
    ("deployer url env 120 KB", {"AGENTOPS_DEPLOYER_URL": LONG_URL}, ["sweep"]),
    ("purge min age negative", {"AGENTOPS_AUDIT_PURGE_MIN_AGE_DAYS": "-1"}, ["audit", "log"]),
]


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to prove a refused command changed nothing."""
    with engine.connect() as connection:
        tables = sorted(inspect(connection).get_table_names())
        return {
            table: sorted(
                tuple(map(str, row)) for row in connection.execute(text(f'SELECT * FROM "{table}"'))
            )
            for table in tables
        }


@pytest.fixture
def populated(engine: Engine) -> Engine:
    with Session(engine) as session:
        degraded_fleet(session)
        session.commit()
    # The background sealer (PostgreSQL) must not move the trail during a snapshot, nor
    # may entries the database wrote itself (migration 0009's triggers) wait for a reader.
    assert wait_until_sealed(engine)
    seal_all(engine)
    return engine


@pytest.mark.parametrize(("case", "argv"), HOSTILE, ids=[case for case, _ in HOSTILE])
def test_hostile_input_gets_one_clear_line_and_changes_nothing(
    case: str,
    argv: list[str],
    populated: Engine,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AGENTOPS_USER_EMAIL", raising=False)
    before = snapshot(populated)
    # A command that blocked on a FIFO would hang the suite: fail it after a few seconds.
    signal.signal(signal.SIGALRM, _too_slow)
    signal.alarm(20)
    try:
        code = run([arg.format(**files) if arg.startswith("{") else arg for arg in argv])
    finally:
        signal.alarm(0)
    _one_clear_line(case, code, capsys, populated, before)


@pytest.mark.parametrize(
    ("case", "env", "argv"), HOSTILE_ENV, ids=[case for case, _, _ in HOSTILE_ENV]
)
def test_hostile_settings_get_one_clear_line_and_change_nothing(
    case: str,
    env: dict[str, str],
    argv: list[str],
    populated: Engine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = snapshot(populated)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        code = run(argv)
    finally:
        for name in env:
            monkeypatch.delenv(name)
        get_settings.cache_clear()
    _one_clear_line(case, code, capsys, populated, before)


def _too_slow(*_args: object) -> None:
    raise TimeoutError("the command did not finish within 20 s")


def _one_clear_line(
    case: str,
    code: int,
    capsys: pytest.CaptureFixture[str],
    populated: Engine,
    before: dict[str, list[tuple[object, ...]]],
) -> None:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code != 0, f"{case}: exit 0\n{captured.out}"
    assert "Traceback" not in captured.err + captured.out
    assert len(lines) == 1, f"{case}: expected one line on stderr, got {lines}"
    assert lines[0].startswith("error: ")
    assert "\x1b" not in captured.err and "\x07" not in captured.err
    assert snapshot(populated) == before, f"{case} changed the database"


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("all_bad", ["line 1: 'messages' is empty"]),
        ("deep_json", ["line 1: JSON nested too deeply"]),
        (
            "not_json",
            [
                "line 1: message 1 contains NaN (at score), which is not valid JSON",
                "line 2: message 1 contains -Infinity (at content[0].n)",
                "line 3: id contains a NUL character",
                "line 4: latency_ms must be at most 2147483647",
            ],
        ),
    ],
)
def test_an_import_where_every_record_is_rejected_fails_and_stores_nothing(
    populated: Engine,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    name: str,
    reasons: list[str],
) -> None:
    before = snapshot(populated)
    code = run(["import", files[name], "--agent", "airline", "--version", "v2"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert all(f"rejected {reason}" in err for reason in reasons), err
    assert "every record was rejected" in err
    assert snapshot(populated) == before


def test_markup_and_escapes_stored_by_a_platform_print_as_plain_text(
    populated: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A conversation id or transcript with markup or escapes must not crash or reach the tty."""
    record = (
        '{"id": "c[/]1\\u001b[31m", "started_at": "2026-11-01T10:00:00Z", '
        '"messages": [{"role": "user", "content": "hi [bold]there\\u001b]0;pwned\\u0007"}, '
        '{"role": "assistant", "content": "' + "long answer " * 200 + '"}]}\n'
    )
    path = tmp_path / "hostile.jsonl"
    path.write_text(record)
    assert run(["import", str(path), "--agent", "airline", "--version", "v2"]) == 0
    rubric = Path(__file__).resolve().parents[1] / "deployments" / "rubric.example.yaml"
    assert run(["rubric", "add", str(rubric)]) == 0
    assert run(["sample", "airline", "--end", "2026-11-01T11:00:00Z", "--hours", "2"]) == 0
    assert run(["people", "add", "rita@x.io", "--role", "reviewer"]) == 0
    capsys.readouterr()
    assert run(["review", "next", "--as", "rita@x.io"]) == 0
    shown = capsys.readouterr().out
    assert "c[/]1" in shown and "hi [bold]there" in shown
    assert "\x1b" not in shown and "\x07" not in shown
    assert "whole: agentops review show 1 --full" in shown
    assert run(["review", "show", "1", "--full"]) == 0
    whole = capsys.readouterr().out
    assert whole.count("long answer") > shown.count("long answer")
    assert run(["audit", "log"]) == 0 and run(["agents", "list"]) == 0
