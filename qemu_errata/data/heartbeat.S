// The fleet guest's /init: the kernel's PSCI line once, then a heartbeat line
// every 200 ms with what the CPU says. Linux emulates these MRS reads at EL0:
// MIDR_EL1 is read afresh on each trap, the ID registers give the kernel's
// sanitised view.
        .text
        .globl _start
_start:
        mov     x0, #-100               // openat(AT_FDCWD, "/dev/kmsg", O_RDONLY|O_NONBLOCK)
        adr     x1, s_kmsg
        mov     x2, #0x800
        mov     x3, #0
        mov     x8, #56
        svc     #0
        mov     x21, x0
        tbnz    x21, #63, counting      // no /dev/kmsg: just count
record:
        mov     x0, x21                 // read(fd, line, 1024): one log record
        adr     x1, line
        mov     x2, #1024
        mov     x8, #63
        svc     #0
        cmp     x0, #0
        b.le    counting                // EAGAIN: every record read
        mov     x22, x0
        adr     x1, line
        add     x2, x1, x22
        movz    w6, #0x5350             // "PSCI", little-endian
        movk    w6, #0x4943, lsl #16
search:
        sub     x4, x2, x1
        cmp     x4, #5
        b.lt    record
        ldr     w5, [x1]
        cmp     w5, w6
        b.ne    next
        ldrb    w5, [x1, #4]
        cmp     w5, #118                // "v"
        b.ne    next
        mov     x0, #1                  // write(1, line, length): the record as it is
        adr     x1, line
        mov     x2, x22
        mov     x8, #64
        svc     #0
        b       record
next:
        add     x1, x1, #1
        b       search
counting:
        mov     x19, #0
beat:
        adr     x20, line
        adr     x1, s_beat
        bl      putstr
        mov     x0, x19
        bl      puthex
        adr     x1, s_midr
        bl      putstr
        mrs     x0, midr_el1
        bl      puthex
        adr     x1, s_pfr0
        bl      putstr
        mrs     x0, id_aa64pfr0_el1
        bl      puthex
        adr     x1, s_pfr1
        bl      putstr
        mrs     x0, id_aa64pfr1_el1
        bl      puthex
        adr     x1, s_isar0
        bl      putstr
        mrs     x0, id_aa64isar0_el1
        bl      puthex
        adr     x1, s_isar1
        bl      putstr
        mrs     x0, id_aa64isar1_el1
        bl      puthex
        adr     x1, s_mmfr0
        bl      putstr
        mrs     x0, id_aa64mmfr0_el1
        bl      puthex
        adr     x1, s_dfr0
        bl      putstr
        mrs     x0, id_aa64dfr0_el1
        bl      puthex
        mov     w3, #10
        strb    w3, [x20], #1
        mov     x0, #1                  // write(1, line, length)
        adr     x1, line
        sub     x2, x20, x1
        mov     x8, #64
        svc     #0
        adr     x0, pause               // nanosleep(&pause, NULL)
        mov     x1, #0
        mov     x8, #101
        svc     #0
        add     x19, x19, #1
        b       beat

// Append the NUL-terminated string at x1 to the line at x20.
putstr:
        ldrb    w3, [x1], #1
        cbz     w3, 1f
        strb    w3, [x20], #1
        b       putstr
1:      ret

// Append x0 as 16 hex digits to the line at x20.
puthex:
        mov     x2, #60
1:      lsr     x3, x0, x2
        and     x3, x3, #0xf
        add     x4, x3, #48
        add     x5, x3, #87
        cmp     x3, #10
        csel    x3, x4, x5, lo
        strb    w3, [x20], #1
        subs    x2, x2, #4
        b.ge    1b
        ret

        .balign 8
pause:  .quad   0, 200000000
s_kmsg: .asciz  "/dev/kmsg"
s_beat: .asciz  "qemu-errata-heartbeat "
s_midr: .asciz  " MIDR_EL1=0x"
s_pfr0: .asciz  " ID_AA64PFR0_EL1=0x"
s_pfr1: .asciz  " ID_AA64PFR1_EL1=0x"
s_isar0: .asciz " ID_AA64ISAR0_EL1=0x"
s_isar1: .asciz " ID_AA64ISAR1_EL1=0x"
s_mmfr0: .asciz " ID_AA64MMFR0_EL1=0x"
s_dfr0: .asciz  " ID_AA64DFR0_EL1=0x"
        .balign 8
line:   .space  1024
