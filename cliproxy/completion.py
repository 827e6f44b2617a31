"""`cliproxy completion bash|zsh`: shell completion, generated from the argument parser itself.

The parser is walked once into a table: for each chain of sub-commands (`""`, `auth`, `auth test`)
the words that may come next (its sub-commands, its options, the choices of its positionals). The
shell function finds the chain among the words typed so far and offers that row, or file names
after an option that takes a path. Nothing is kept by hand, so a new sub-command completes as
soon as it is registered.

    source <(cliproxy completion bash)     # in ~/.bashrc
    source <(cliproxy completion zsh)      # in ~/.zshrc, after compinit
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Iterator

PATH_OPTIONS = ("--config", "-config", "--auth-dir", "--file")  # options whose value is a file name
SHELLS = ("bash", "zsh")


def command_table(parser: argparse.ArgumentParser, chain: str = "") -> Iterator[tuple[str, list[str]]]:
    """(sub-command chain, words that may follow it) for `parser` and every sub-parser below it."""
    words: list[str] = []
    below: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words.append(name)
                below.append((f"{chain} {name}".strip(), sub))
        elif action.option_strings:
            words.extend(o for o in action.option_strings if o.startswith("--") or o == "-config")
        elif action.choices is not None:
            words.extend(str(choice) for choice in action.choices)
    yield chain, words
    for sub_chain, sub in below:
        yield from command_table(sub, sub_chain)


BASH = """\
# bash completion for cliproxy (`cliproxy completion bash`)
_cliproxy_words() {
    case "$1" in
%(cases)s
    esac
}
_cliproxy() {
    local cur prev chain word i
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    case "$prev" in
        %(paths)s) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
    esac
    chain=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        case "$word" in -*) continue ;; esac
        if [[ -n "$(_cliproxy_words "${chain:+$chain }$word")" ]]; then
            chain="${chain:+$chain }$word"
        fi
    done
    COMPREPLY=($(compgen -W "$(_cliproxy_words "$chain")" -- "$cur"))
}
complete -F _cliproxy cliproxy
"""

ZSH = """\
# zsh completion for cliproxy (`cliproxy completion zsh`)
typeset -gA _cliproxy_table
_cliproxy_table=(
%(entries)s
)
_cliproxy() {
    local chain="" word
    if [[ "${words[CURRENT-1]}" == (%(paths)s) ]]; then
        _files
        return
    fi
    for word in "${(@)words[2,CURRENT-1]}"; do
        [[ "$word" == -* ]] && continue
        if (( ${+_cliproxy_table[${chain:+$chain }$word]} )); then
            chain="${chain:+$chain }$word"
        fi
    done
    compadd -- ${=_cliproxy_table[$chain]}
}
compdef _cliproxy cliproxy
"""


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    table = list(command_table(parser))
    if shell == "bash":
        cases = "\n".join(
            f"        {shlex.quote(chain)}) echo {shlex.quote(' '.join(words))} ;;" for chain, words in table
        )
        return BASH % {"cases": cases, "paths": "|".join(PATH_OPTIONS)}
    entries = "\n".join(f"    {shlex.quote(chain)} {shlex.quote(' '.join(words))}" for chain, words in table)
    return ZSH % {"entries": entries, "paths": "|".join(PATH_OPTIONS)}


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], root: Callable[[], argparse.ArgumentParser]
) -> None:
    """`completion bash|zsh`; `root` builds the whole parser (this one included) to walk."""
    parser = subparsers.add_parser("completion", help="print a shell completion script (bash or zsh)")
    parser.add_argument("shell", choices=SHELLS)

    def run(args: argparse.Namespace) -> int:
        sys.stdout.write(script(args.shell, root()))
        return 0

    parser.set_defaults(func=run)
