# The upstream plugins' names as symlinks to the binary (the .deb ships them as files of the
# package; the .rpm makes them here, as it has since cargo-generate-rpm, which cannot package
# a symlink, built it). A name that exists already is left alone.
d=/usr/libexec/kubelet-credential-providers
for n in ecr-credential-provider auth-provider-gcp gcr-credential-provider gcp-credential-provider acr-credential-provider; do
    [ -e "$d/$n" ] || [ -L "$d/$n" ] || ln -s kubelet-keyring "$d/$n"
done
