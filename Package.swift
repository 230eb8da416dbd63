// swift-tools-version: 6.2
// locksmith-swift: a cluster reboot manager, compatible with CoreOS locksmith.
//
// Layout (see ../shared/STYLE.md and docs/architecture.md):
//   CJSONC                    json-c (pkg-config) with a small typed shim
//   CCurl, CSystemd           libcurl and libsystemd, loaded on first use, with typed wrappers
//   CGlibc                    glibc facilities Swift does not import (AT_SECURE, close_range)
//   CLocksmith                the hand-written public header include/locksmith.h, as a module
//   LocksmithCore             pure Swift rules: semaphore, window, durations, config text, backoff
//   LocksmithSystem           I/O: files, machine id, local time, update.conf locations
//   LocksmithEtcd             the etcd lock client: v2 and v3 wire, compare-and-swap, failover, watch
//   LocksmithBus              the system D-Bus (sd-bus): update engine and logind
//   locksmithctl              the operator CLI
//   locksmithd                the reboot daemon
//   Locksmith                 the C ABI (`@c @implementation` of include/locksmith.h)
//
// The shipped liblocksmith.so.1 (static Swift runtime, version script, soname) is linked by the
// Makefile; nothing here needs unsafe flags.
import PackageDescription

let package = Package(
    name: "locksmith",
    products: [
        .library(name: "locksmith", type: .dynamic, targets: ["Locksmith"]),
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
        .target(name: "LocksmithBus", dependencies: ["CSystemd", "LocksmithCore"]),
        .target(name: "Locksmith", dependencies: ["CLocksmith", "LocksmithCore", "LocksmithSystem", "LocksmithEtcd"]),
        .executableTarget(name: "locksmithctl", dependencies: ["LocksmithCore", "LocksmithSystem", "LocksmithEtcd", "LocksmithBus"]),
        .executableTarget(name: "locksmithd", dependencies: ["CGlibc", "CSystemd", "LocksmithCore", "LocksmithSystem", "LocksmithEtcd", "LocksmithBus"]),
        .testTarget(
            name: "LocksmithCoreTests",
            dependencies: ["LocksmithCore", "LocksmithSystem"],
            exclude: ["vectors"]
        ),
        .testTarget(
            name: "LocksmithEtcdTests",
            dependencies: ["LocksmithCore", "LocksmithSystem", "LocksmithEtcd"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
