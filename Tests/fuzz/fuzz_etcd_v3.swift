// Fuzzes how answers of etcd's v3 JSON gateway are read (Sources/LocksmithEtcd/EtcdWire.swift,
// V3): ranges, transactions, prefix listings, authentication, watch stream lines, and error
// answers under each HTTP status the gateway uses. Seeds are answers of a real etcd.
//
// Invariants: any status but 200 fails, 200 with JSON does not fail in `answer`; every failure is
// a LocksmithError of a kind the client handles; a value read is the first kv's, and the same
// value written as a canonical answer (base64, revision as a string) reads back equal, for a
// range, a lost transaction and a watch event alike; a stored transaction reports the header's
// revision; a token is never empty.
import LocksmithCore

private let key = "coreos.com/updateengine/rebootlock/semaphore"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEtcdV3(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let body = Array(inputBytes(data, size))
    let tree = JSONTree(body)

    for status in [200, 400, 401, 403, 404, 500, 503] {
        let response = HTTPResponse(status: status, body: body)
        do {
            _ = try V3.answer(response, key: key)
            invariant(status == 200 && tree != nil, "answer accepted HTTP \(status)")
        } catch let error as LocksmithError {
            invariant(status != 200 || tree == nil, "answer refused a JSON 200: \(error.message)")
            invariant([.protocolError, .permissionDenied].contains(error.kind), "answer failed with kind \(error.kind)")
        } catch {
            invariant(false, "not a LocksmithError: \(error)")
        }
    }

    let ok = HTTPResponse(status: 200, body: body)
    typed {
        switch try V3.parseRange(ok, key: key) {
        case .value(let v):
            invariant(tree?.node["kvs"]?[0]?["mod_revision"]?.int64 == v.index, "range index is not the first kv's mod_revision")
            let again = try? V3.parseRange(canonical(#"{"header":{"revision":"1"},"kvs":[\#(kv(v))],"count":"1"}"#), key: key)
            guard case .value(let w)? = again else { invariant(false, "canonical range not read"); return }
            invariant(w == v, "canonical range reads differently")
        case .missing:
            invariant(tree?.node["kvs"]?[0] == nil, "missing although kvs has an element")
        default:
            invariant(false, "a range answered a write result")
        }
    }
    typed {
        switch try V3.parseTxn(ok, key: key) {
        case .stored(let revision):
            invariant(tree?.node["succeeded"]?.bool == true && tree?.node["header"]?["revision"]?.int64 == revision, "stored without success")
        case .conflict(let current):
            invariant(tree?.node["succeeded"]?.bool != true, "a conflict although succeeded")
            if let v = current {
                let lost = #"{"header":{"revision":"2"},"responses":[{"response_range":{"header":{"revision":"2"},"kvs":[\#(kv(v))],"count":"1"}}]}"#
                guard case .conflict(let w?)? = try? V3.parseTxn(canonical(lost), key: key) else { invariant(false, "canonical txn not read"); return }
                invariant(w == v, "canonical txn reads differently")
            }
        default:
            invariant(false, "a transaction answered a read result")
        }
    }
    typed {
        let all = try V3.parseRangeAll(ok, key: key)
        invariant(all.count <= (tree?.node["kvs"]?.count ?? 0), "more entries than kvs")
        let kvs = all.map { entry -> String in
            let k = Base64.encode(entry.key), v = Base64.encode(entry.value ?? [])
            return #"{"key":"\#(k)","mod_revision":"1","value":"\#(v)"}"#
        }
        let again = (try? V3.parseRangeAll(canonical(#"{"kvs":[\#(kvs.joined(separator: ","))]}"#), key: key)) ?? []
        invariant(again.count == all.count && zip(again, all).allSatisfy { $0.key.utf8.elementsEqual($1.key.utf8) && $0.value == $1.value },
                  "canonical listing reads differently")
    }
    typed {
        let token = try V3.parseToken(ok)
        invariant(!token.isEmpty && tree?.node["token"]?.string == token, "token is not the answer's")
    }

    // The watch stream: the input is one line of it.
    if let event = V3.watchEvent(body) {
        invariant(tree?.node["result"] != nil, "a watch event without a result")
        if case .changed(let v?) = event {
            let line = #"{"result":{"header":{"revision":"3"},"events":[{"kv":\#(kv(v))}]}}"#
            invariant(V3.watchEvent(Array(line.utf8)) == .changed(v), "canonical watch line reads differently")
        }
    }
    return 0
}

private func kv(_ v: StoredValue) -> String {
    #"{"key":"\#(Base64.encode(key))","create_revision":"1","mod_revision":"\#(v.index)","version":"1","value":"\#(Base64.encode(v.bytes))"}"#
}

private func canonical(_ text: String) -> HTTPResponse { HTTPResponse(status: 200, body: Array(text.utf8)) }

private func typed(_ body: () throws -> Void) {
    do {
        try body()
    } catch let error as LocksmithError {
        invariant([.protocolError, .permissionDenied, .badMessage].contains(error.kind), "v3 read failed with kind \(error.kind): \(error.message)")
    } catch {
        invariant(false, "not a LocksmithError: \(error)")
    }
}
