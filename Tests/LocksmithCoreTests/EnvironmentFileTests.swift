import Testing
@testable import LocksmithCore

@Suite struct EnvironmentFileTests {
    func parse(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in EnvironmentFile.parse(text).assignments { out[k] = v }
        return out
    }

    @Test func plainAssignmentsCommentsAndBlanks() {
        let text = """
            # Written by Ignition
            ; also a comment

            REBOOT_STRATEGY=etcd-lock
              GROUP = lb  \t
            LOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00
            EMPTY=
            """
        #expect(parse(text) == ["REBOOT_STRATEGY": "etcd-lock", "GROUP": "lb", "LOCKSMITHD_REBOOT_WINDOW_START": "Thu 23:00", "EMPTY": ""])
    }

    @Test func quotes() {
        #expect(parse(#"A="Thu 23:00""#)["A"] == "Thu 23:00")
        #expect(parse("A='single \\n \"kept\"'")["A"] == "single \\n \"kept\"")
        #expect(parse(#"A="esc \" \\ \$ \` \n""#)["A"] == #"esc " \ $ ` \n"#)
        #expect(parse(#"A="x" 'y'z"#)["A"] == "xyz")
        #expect(parse("A=  \"  padded  \"  ")["A"] == "  padded  ")
        #expect(parse(#"A=mid"quote"#)["A"] == #"mid"quote"#)
        #expect(parse("A=\"unterminated")["A"] == "unterminated")
    }

    @Test func escapesAndContinuations() {
        #expect(parse("A=one\\\ntwo\nB=2")["A"] == "onetwo")
        #expect(parse("A=one\\\ntwo\nB=2")["B"] == "2")
        #expect(parse("A=a\\ b")["A"] == "a b")
        #expect(parse("A=trailing\\ ")["A"] == "trailing ")
        #expect(parse("A=\"multi\nline\"")["A"] == "multi\nline")
        #expect(parse("# comment \\\nB=hidden\nC=3") == ["C": "3"])
    }

    @Test func laterWinsAndCRLF() {
        #expect(parse("A=1\r\nA=2\r\n")["A"] == "2")
    }

    @Test func badLinesAreSkippedWithWarnings() {
        let result = EnvironmentFile.parse("no equals here\n1BAD=x\nGOOD=y\nBAD-NAME=z\n")
        #expect(result.assignments.map(\.key) == ["GOOD"])
        #expect(result.warnings.count == 3)
        #expect(result.warnings[0].hasPrefix("line 1:"))
        #expect(result.warnings[1].hasPrefix("line 2:"))
        #expect(result.warnings[2].hasPrefix("line 4:"))
    }

    @Test func configurationMergesWithOrigins() {
        var c = Configuration()
        c.merge(fileText: "A=1\nB=1\n", origin: "/usr/share/coreos/update.conf")
        c.merge(fileText: "B=2\nbad line\n", origin: "/etc/coreos/update.conf")
        c.merge(environment: [(key: "A", value: "env")])
        #expect(c["A"] == "env")
        #expect(c.settings["A"]?.origin == "environment")
        #expect(c["B"] == "2")
        #expect(c.settings["B"]?.origin == "/etc/coreos/update.conf")
        #expect(c["C"] == nil)
        #expect(c.warnings == ["/etc/coreos/update.conf: line 2: no \"=\" in \"bad line\", line ignored"])
    }

    @Test func aVariableWithAFilesValueNamesTheFile() {
        // Under the unit the files reach the daemon as variables too (EnvironmentFile=): a
        // message names the file where the setting is, not "the environment" (issue 27).
        var c = Configuration()
        c.merge(fileText: "REBOOT_STRATEGY=sometimes\n", origin: "/etc/default/locksmithd")
        c.merge(environment: [(key: "REBOOT_STRATEGY", value: "sometimes")])
        #expect(c.settings["REBOOT_STRATEGY"] == .init(value: "sometimes", origin: "/etc/default/locksmithd", line: 1))
        c.merge(environment: [(key: "REBOOT_STRATEGY", value: "reboot")])
        #expect(c.settings["REBOOT_STRATEGY"]?.origin == "environment")
    }
}
