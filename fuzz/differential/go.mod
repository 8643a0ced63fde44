module kubelet-keyring/differential

go 1.19
