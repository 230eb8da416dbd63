// How long to wait before retrying after an error: 5 s, doubling, at most 5 minutes.

public enum Backoff {
    public static let initialSeconds: Int64 = 5
    public static let maximumSeconds: Int64 = 300

    /// The wait before retry number `attempt` (0 for the first retry): 5, 10, 20, ... capped at
    /// 300 seconds; never negative and never overflowing, however large `attempt` gets.
    public static func delay(attempt: Int) -> Int64 {
        guard attempt > 0 else { return initialSeconds }
        // 5 << 6 = 320 already exceeds the cap; stop shifting before any overflow can happen.
        guard attempt < 6 else { return maximumSeconds }
        return min(initialSeconds << Int64(attempt), maximumSeconds)
    }
}
