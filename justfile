# Every task a developer or operator repeats. Run them through ./dev, which prepares .venv first:
# ./dev up, ./dev test, ./dev lint ... (`just <recipe>` works too once .venv exists).

set positional-arguments

export PATH := justfile_directory() / ".venv/bin" + ":" + env("PATH")
export UV_PROJECT_ENVIRONMENT := justfile_directory() / ".venv"

# list the recipes
default:
    @just --list

# run NATS, PostgreSQL and every service on this machine; Ctrl-C stops them all
up *args:
    zaphub-stack "$@"

# run the test suite (real servers, started by the fixtures); args go to pytest
test *args:
    pytest "$@"

# ruff lint and format check, mypy on every package
lint:
    ruff check . dev
    ruff format --check . dev
    mypy libs/*/src tools/*/src services/*/src

# fix what ruff can fix, format everything
fmt:
    ruff check --fix . dev
    ruff format . dev

# regenerate the checked-in JSON Schemas and AsyncAPI document from libs/contracts
schemas:
    python -m zaphub_contracts.export

# load benchmarks (bench/); args go to the runner
bench *args:
    python -m bench "$@"

# database migrations run when the API starts; this is the hook for running them alone
migrate:
    @echo "migrations are applied by zaphub-api at start (zaphub_api.store.migrate)"
