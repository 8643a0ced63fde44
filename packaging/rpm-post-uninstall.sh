# On erase ($1 = 0, not on upgrade), the symlinks %post made, and only those.
if [ "$1" = 0 ]; then
    d=/usr/libexec/kubelet-credential-providers
    for n in ecr-credential-provider auth-provider-gcp gcr-credential-provider gcp-credential-provider acr-credential-provider; do
        [ "$(readlink "$d/$n" 2>/dev/null)" = kubelet-keyring ] && rm -f "$d/$n"
    done
    rmdir "$d" 2>/dev/null || :
fi
