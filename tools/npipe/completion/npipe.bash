# bash completion for npipe (installed as share/bash-completion/completions/npipe).
_npipe_pipes() {
    local dir=${TMPDIR:-/tmp} f
    for f in "$dir"/CoreFxPipe_*; do
        [[ -S $f ]] && printf '%s\n' "${f##*/CoreFxPipe_}"
    done
}

_npipe() {
    local cur=${COMP_WORDS[COMP_CWORD]} sub="" subsub="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -*) ;;
            *) if [[ -z $sub ]]; then sub=${COMP_WORDS[i]}; elif [[ -z $subsub ]]; then subsub=${COMP_WORDS[i]}; fi ;;
        esac
    done
    local common="-h --help -q --quiet -v --verbose"
    local words
    case $sub in
        "") words="demo serve connect list anon chat gateway bench --version $common" ;;
        serve) words="--max-instances --current-user-only --shared-memory --once --mode --group --allow-uid --allow-gid
                      --idle-timeout --write-timeout --echo --message $common" ;;
        connect) words="--server --timeout --current-user-only --shared-memory --retry --ca --cert --key --token-file
                        --dead-peer-timeout $common" ;;
        list) words="--all --json --clean $common" ;;
        anon) [[ -z $subsub ]] && words="send recv read write $common" || words="--buffer-size $common" ;;
        chat | demo) [[ -z $subsub ]] && words="server client $common" || words="--timeout $common" ;;
        gateway) words="--listen --cert --key --client-ca --token-file --allow --dead-peer-timeout
                        --idle-timeout --quiet $common" ;;
        bench) words="latency throughput messages connect --size --count --bytes --force --clients
                      --rounds --buffer-size --cpu-server --cpu-client --message --coalesce --spin-us
                      --shared-memory --remote --json $common" ;;
    esac
    if [[ $cur != -* && ( $sub == connect || $sub == serve || $subsub == client || $subsub == server ) ]]; then
        words="$words $(_npipe_pipes)"
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _npipe npipe
