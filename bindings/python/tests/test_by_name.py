"""LOCKSMITH_5 through the binding: the daemon's settings by name, the FleetLock group rule."""
import pytest

import locksmith


def test_daemon_settings_by_name_match_the_accessors():
    config = locksmith.Config.parse("REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_HOOK_TIMEOUT=90s\n", "test")
    settings = locksmith.DaemonSettings(config, "/")
    names = locksmith.DaemonSettings.names()
    assert names[0] == "strategy" and "hook-timeout" in names and "fleetlock-id" in names
    assert settings.get("strategy") == settings.strategy == "etcd-lock"
    assert settings.get("hook-timeout") == "1m30s"
    assert locksmith.duration_parse(settings.get("hook-timeout")) == settings.hook_timeout
    assert settings.get("slot-wait") == settings.slot_wait
    assert settings.get("metrics-file") is None and settings.get("window-start") is None
    with pytest.raises(locksmith.InvalidArgument):
        settings.get("no-such-setting")


@pytest.mark.parametrize("group", ["default", "web-1", "a.b"])
def test_fleetlock_groups(group):
    locksmith.fleetlock_group_check(group)


@pytest.mark.parametrize("group", ["", ".", "..", "web_1", "g" * 129])
def test_not_fleetlock_groups(group):
    with pytest.raises(locksmith.InvalidArgument):
        locksmith.fleetlock_group_check(group)
