"""Entry point `zaphub-dispatcher`."""

from zaphub_dispatcher.app import run
from zaphub_dispatcher.settings import DispatcherSettings
from zaphub_runtime.service import serve


def main() -> None:
    serve("dispatcher", DispatcherSettings(), run)


if __name__ == "__main__":
    main()
