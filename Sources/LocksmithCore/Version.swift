// The one place the version lives.

public enum Version {
    /// Follows the original's last release, 0.6.2.
    public static let string = "0.11.0"
}
