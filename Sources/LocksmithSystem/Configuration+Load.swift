// Loading a node's configuration: the update.conf files under the system root, then the
// process environment on top.
import LocksmithCore

extension Configuration {
    /// Reads every update.conf that exists (Configuration.updateConfPaths, under `root`), then
    /// the process environment. A file that exists but cannot be read is an error naming it.
    public static func load(root: String? = nil, environment: Bool = true) throws -> Configuration {
        let root = try root ?? SystemRoot.current()
        var config = Configuration()
        for path in Configuration.updateConfPaths {
            let file = SystemRoot.resolve(path, root: root)
            let bytes: [UInt8]
            do {
                bytes = try Syscalls.readFile(file, limit: 1 << 20)
            } catch let error as LocksmithError where error.kind == .notFound {
                continue
            }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw LocksmithError(.badMessage, "\(file): not UTF-8 text")
            }
            config.merge(fileText: text, origin: file)
        }
        if environment {
            config.merge(environment: Syscalls.environment())
        }
        return config
    }
}
