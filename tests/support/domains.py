"""A libvirt domain as libvirt prints it, for the tests that apply pool models to one."""

# As libvirt prints a domain, with another tool's metadata, a user's own QEMU
# argument, a CPU topology and a secret that must survive.
DOMAIN = b"""<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>pool-vm</name>
  <uuid>7d5b36f1-4cac-4688-9f82-9185f41f5932</uuid>
  <metadata>
    <other:tag xmlns:other="urn:example:other" owner='someone'>
      <other:item value='1'/>
    </other:tag>
  </metadata>
  <memory unit='KiB'>131072</memory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='aarch64' machine='virt-7.2'>hvm</type>
  </os>
  <cpu mode='custom' match='exact' check='partial'>
    <model fallback='allow'>cortex-a57</model>
    <topology sockets='1' dies='1' cores='2' threads='1'/>
    <feature policy='disable' name='sve'/>
  </cpu>
  <clock offset='utc'/>
  <devices>
    <emulator>/usr/bin/qemu-system-aarch64</emulator>
    <graphics type='vnc' port='-1' passwd='secret'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-qmp'/>
    <qemu:arg value='unix:/run/extra.sock,server=on,wait=off'/>
    <qemu:env name='QEMU_AUDIO_DRV' value='none'/>
  </qemu:commandline>
</domain>
"""
