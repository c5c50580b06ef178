#!/usr/bin/python3
"""Raw QEMU boots of provium's guests, no provium involved (bench/image_bench.sh).

For each of linux, host, deb and debsd (the Debian profiles of --config),
boots QEMU the way src/vm/vm.c does (q35, the same -append, the agent's
virtio-serial port; the Debian root.squashfs as the same read-only virtio-blk
disk; the host's / through virtiofsd with guest RAM a shared memfd) and
times the spawn to the agent's first bytes on its port (its hello). Prints
{"linux": [ms, ...], ...} as JSON.
"""
import argparse, json, os, re, shutil, socket, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--config", required=True)
ap.add_argument("--provium", required=True)
ap.add_argument("--profiles", default="linux,host,deb,debsd", help="which guests, comma-separated")
ap.add_argument("--image", help="the kernel + initramfs directory (default: the built-in image's)")
ap.add_argument("--root", help="deb's root file system instead of its root.squashfs (bench/rootfs_bench.sh)")
ap.add_argument("--fstype", default="squashfs", help="--root's file system type")
a = ap.parse_args()

listing = subprocess.run([a.provium, "image", "list", "--config", a.config], check=True, capture_output=True,
                         text=True).stdout
builtin = re.search(r"^linux, host +built-in +(\S+)$", listing, re.M)
if not builtin:
    sys.exit("raw_boot: the built-in image is not built")
roots = dict(re.findall(r"^(\w+) +debian +(\S+/root\.squashfs) ", listing, re.M))
img = a.image or builtin.group(1)
kernel, initrd = img + "/vmlinuz", img + "/initrd"
if a.root:
    roots["deb"] = a.root
virtiofsd = os.environ.get("PROVIUM_VIRTIOFSD", "/usr/lib/qemu/virtiofsd")


def boot(profile, d):
    sock, extra, append = d + "/agent.sock", [], "console=ttyS0 quiet panic=-1 edd=off init_on_free=1"
    fsd = None
    if profile == "host":
        fs = d + "/fs.sock"
        fsd = subprocess.Popen([virtiofsd, "--socket-path=" + fs, "-o", "source=/", "-o", "sandbox=chroot"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not os.path.exists(fs):
            time.sleep(0.002)
        extra += ["-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-numa", "node,memdev=mem",
                  "-chardev", "socket,id=fsc0,path=" + fs, "-device", "vhost-user-fs-pci,chardev=fsc0,id=fs0,tag=pvroot"]
        append += " provium.root=pvroot"
    elif profile in ("deb", "debsd"):
        extra += ["-blockdev", "driver=raw,node-name=rootfs,read-only=on,file.driver=file,file.filename=" + roots[profile],
                  "-device", "virtio-blk-pci,drive=rootfs,id=rootfs,serial=provium-root,addr=0x0f"]
        append += " provium.rootfs=provium-root" + (" provium.init=systemd" if profile == "debsd" else "")
        if a.fstype != "squashfs":
            append += " provium.rootfstype=" + a.fstype
    t0 = time.monotonic()
    q = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64", "-m", "256", "-smp", "1",
                          "-nodefaults", "-no-user-config", "-display", "none", "-M", "q35", "-device", "virtio-serial-pci",
                          "-chardev", "socket,id=ag,path=%s,server=on,wait=off" % sock,
                          "-device", "virtserialport,chardev=ag,name=org.provium.agent.0", "-serial", "file:" + d + "/console.log",
                          "-kernel", kernel, "-initrd", initrd, "-append", append, "-no-reboot", *extra])
    try:
        while not os.path.exists(sock):
            if q.poll() is not None:
                sys.exit("raw_boot: QEMU exited (%s)" % profile)
            time.sleep(0.002)
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.settimeout(300)
        if not s.recv(1):
            sys.exit("raw_boot: the agent's port closed (%s)" % profile)
        ms = (time.monotonic() - t0) * 1000
        s.close()
        return ms
    finally:
        q.kill()
        q.wait()
        if fsd:
            fsd.kill()
            fsd.wait()


out = {}
for i in range(a.rounds):
    for p in a.profiles.split(","):
        d = tempfile.mkdtemp(prefix="pvraw.")
        try:
            out.setdefault(p, []).append(boot(p, d))
        finally:
            shutil.rmtree(d, ignore_errors=True)
print(json.dumps(out))
