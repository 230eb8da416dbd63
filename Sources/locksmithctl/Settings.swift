// Where each etcd setting of locksmithctl comes from: the command line, then LOCKSMITHCTL_<NAME>,
// then the daemon's own configuration (LOCKSMITHD_<NAME> from the environment and the update.conf
// files), so that `locksmithctl status` on a node looks at the group its daemon uses.
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

struct ResolvedSetting {
    let name: String
    let value: String
    /// Where it came from, for -debug: "flag -group", "LOCKSMITHCTL_GROUP", "LOCKSMITHD_GROUP in /etc/coreos/update.conf".
    let origin: String
}

enum Settings {
    /// The client options of locksmithctl, in the order `ClientOptions.names` lists them.
    static func resolve(_ commandLine: ParsedCommandLine, environment: (String) -> String?,
                        daemonConfiguration: () -> Configuration?) -> [ResolvedSetting] {
        var resolved: [ResolvedSetting] = []
        var daemon: Configuration??  // loaded once, only if needed
        for name in ClientOptions.names {
            let given = commandLine.values(of: name)
            if !given.isEmpty {
                resolved.append(ResolvedSetting(name: name, value: given.joined(separator: ","), origin: "flag -\(name)"))
                continue
            }
            let own = ClientOptions.variable(prefix: "LOCKSMITHCTL", option: name)
            if let value = environment(own), !value.isEmpty {
                resolved.append(ResolvedSetting(name: name, value: value, origin: own))
                continue
            }
            if daemon == nil { daemon = .some(daemonConfiguration()) }
            let theirs = ClientOptions.variable(prefix: "LOCKSMITHD", option: name)
            if let config = daemon ?? nil, let setting = config.settings[theirs], !setting.value.isEmpty {
                let place = setting.origin == "environment" ? "the environment" : setting.origin
                resolved.append(ResolvedSetting(name: name, value: setting.value, origin: "\(theirs) in \(place)"))
            }
        }
        return resolved
    }

    /// The text -debug prints for a setting: passwords are never shown, not even in endpoint URLs.
    static func describe(_ setting: ResolvedSetting) -> String {
        var shown = setting.name == "etcd-password" ? "(hidden)"
            : setting.name == "endpoint" || setting.name == "proxy" ? ClientOptions.withoutCredentials(setting.value) : setting.value
        // Shown before it is checked: a control character would reach the terminal as is.
        if SemaphoreDocument.hasControlCharacter(shown) { shown = JSONText.quoted(shown) }
        return "\(setting.name) = \(shown) (from \(setting.origin))"
    }
}
