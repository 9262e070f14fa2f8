# bash completion for weirctl (installed by `meson install` into
# share/bash-completion/completions/weirctl).
#
# Completes options, command words, rollout subcommands, the arguments of a
# changing command (if-generation=, dry-run=1, force=1) and version names,
# which it asks the running weir for (`weirctl --json status`, with the
# -s/--socket given on the line); without a reachable weir, no names.

_weirctl_versions()
{
    local sock=()
    local i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
            -s|--socket) sock=(-s "${COMP_WORDS[i+1]}") ;;
            --socket=*) sock=(-s "${COMP_WORDS[i]#--socket=}") ;;
        esac
    done
    weirctl "${sock[@]}" --json --timeout 2 status 2>/dev/null |
        grep -o '"split":{[^}]*}' | grep -o '"[^"]*":' | tr -d '":' | grep -v '^split$'
}

_weirctl()
{
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="status split flip rollback rollout reload drain undrain add-endpoint
        remove-endpoint add-rule remove-rule explain history events guard version help"
    local flags="if-generation= dry-run=1 force=1"

    case $prev in
        -s|--socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -t|--timeout) return ;;
    esac

    # The command word: the first word that is not an option (or its value).
    local i cmd="" cmd_at=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -s|--socket|-t|--timeout) ((i++)) ;;
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; cmd_at=$i; break ;;
        esac
    done

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "-s --socket -j --json -t --timeout -h --help -V --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    local versions
    case $cmd in
        split)
            versions=$(_weirctl_versions)
            COMPREPLY=($(compgen -W "$(printf '%s= ' $versions) $flags" -- "$cur"))
            compopt -o nospace 2>/dev/null ;;
        flip)
            versions=$(_weirctl_versions)
            COMPREPLY=($(compgen -W "$versions $flags" -- "$cur")) ;;
        drain|undrain|add-endpoint|remove-endpoint)
            if ((COMP_CWORD == cmd_at + 1)); then
                COMPREPLY=($(compgen -W "$(_weirctl_versions)" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$flags weight=" -- "$cur"))
            fi ;;
        rollout)
            if ((COMP_CWORD == cmd_at + 1)); then
                COMPREPLY=($(compgen -W "start pause resume promote abort" -- "$cur"))
            elif [[ ${COMP_WORDS[cmd_at+1]} == start ]] && ((COMP_CWORD == cmd_at + 2)); then
                COMPREPLY=($(compgen -W "$(_weirctl_versions)" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "steps= hold= $flags" -- "$cur"))
            fi ;;
        add-rule)
            COMPREPLY=($(compgen -W "header= cookie= value= version= at= $flags" -- "$cur")) ;;
        rollback|reload|remove-rule)
            COMPREPLY=($(compgen -W "$flags" -- "$cur")) ;;
    esac
    [[ ${COMPREPLY[0]-} == *= ]] && compopt -o nospace 2>/dev/null
    return 0
}
complete -F _weirctl weirctl
