// swift-tools-version: 6.2
// locksmith-swift: a cluster reboot manager, compatible with CoreOS locksmith.
//
// Layout (the README's Layout section says more; house style in ../shared/STYLE.md):
//   CJSONC                    json-c (pkg-config) with a small typed shim
//   CCurl, CSystemd           libcurl and libsystemd, loaded on first use, with typed wrappers
//   CGlibc                    glibc facilities Swift does not import (AT_SECURE, close_range)
//   CLocksmith                the hand-written public header include/locksmith.h, as a module
//   LocksmithCore             pure Swift rules: semaphore, window, durations, config text, backoff
//   LocksmithSystem           I/O: files, machine id, local time, update.conf locations
//   LocksmithEtcd             the etcd lock client: v2 and v3 wire, compare-and-swap, failover, watch
//   LocksmithBus              the system D-Bus (sd-bus): update engine and logind
//   locksmithctl              the operator CLI
//   LocksmithDaemon           the daemon's state machine, acting through seams (unit-tested)
//   locksmithd                the reboot daemon: the real seams (sd-bus, coordinator.conf, utmp, journal)
//   LocksmithCAPI             the C API: `@c @implementation` of include/locksmith.h
//   Locksmith                 the Swift overlay of that C API: what the Swift programs use
//
// The shipped liblocksmith.so.1 (static Swift runtime, version script, soname) is linked by the
// Makefile; nothing here needs unsafe flags. The programs reach the library only through the
// overlay. The Makefile builds them with LOCKSMITH_LINK_SHARED=1: the overlay then links
// liblocksmith.so.1 (`ldd` shows it), as every C program does. Without it (`swift build`,
// `swift test`) the overlay links the C API's target into the program instead, so that a plain
// SwiftPM build needs no library installed first.
import PackageDescription

let linkShared = Context.environment["LOCKSMITH_LINK_SHARED"] != nil

let package = Package(
    name: "locksmith",
    products: [
        .library(name: "locksmith", type: .dynamic, targets: ["LocksmithCAPI"]),
        .executable(name: "locksmithctl", targets: ["locksmithctl"]),
        .executable(name: "locksmithd", targets: ["locksmithd"]),
    ],
    targets: [
        .systemLibrary(name: "CJSONC", pkgConfig: "json-c", providers: [.apt(["libjson-c-dev"])]),
        .target(name: "CLoader"),
        .target(name: "CGlibc"),
        // libcurl is loaded with dlopen on first use (see its header): headers only at build time.
        .target(name: "CCurl", dependencies: ["CLoader"]),
        // libsystemd is loaded with dlopen on first use (see its header): headers only at build time.
        .target(name: "CSystemd", dependencies: ["CLoader"]),
        .systemLibrary(name: "CLocksmith"),
        .target(name: "LocksmithCore", dependencies: ["CJSONC"]),
        .target(name: "LocksmithSystem", dependencies: ["CGlibc", "LocksmithCore"]),
        .target(name: "LocksmithEtcd", dependencies: ["CCurl", "LocksmithCore", "LocksmithSystem"]),
        .target(name: "LocksmithBus", dependencies: ["CSystemd"]),
        .target(name: "LocksmithCAPI", dependencies: ["CLocksmith", "LocksmithCore", "LocksmithSystem", "LocksmithEtcd"]),
        .target(name: "Locksmith", dependencies: ["CLocksmith"] + (linkShared ? [] : ["LocksmithCAPI"]),
                linkerSettings: linkShared ? [.linkedLibrary("locksmith")] : []),
        .executableTarget(name: "locksmithctl", dependencies: ["Locksmith", "LocksmithBus", "LocksmithDaemon"]),
        .target(name: "LocksmithDaemon", dependencies: ["Locksmith"]),
        .executableTarget(name: "locksmithd", dependencies: ["CGlibc", "CSystemd", "Locksmith", "LocksmithBus", "LocksmithDaemon"]),
        .testTarget(
            name: "LocksmithCoreTests",
            dependencies: ["LocksmithCore", "LocksmithSystem"],
            exclude: ["vectors"]
        ),
        .testTarget(name: "LocksmithDaemonTests", dependencies: ["LocksmithDaemon", "Locksmith"]),
        .testTarget(
            name: "LocksmithEtcdTests",
            dependencies: ["LocksmithCore", "LocksmithSystem", "LocksmithEtcd"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
