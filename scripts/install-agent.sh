#!/bin/sh
# Handrail agent installer (served by the coordinator at /install/agent.sh; the line from
# `handrail agent install-command` downloads and runs it). POSIX sh; needs curl, sha256sum and
# Node >= 20.17 on the host, nothing from npm.
#
#   install / upgrade:  sh agent.sh --server URL --coordinator HOST:PORT --ca FILE --token-file FILE
#   uninstall:          sh /opt/handrail-agent/install-agent.sh --uninstall [--keep-identity]
#
# What it does: downloads the bundled agent from the coordinator (or --bundle-url), refuses it
# unless its SHA-256 is the one below, creates the system user handrail-agent, writes
# /opt/handrail-agent (the bundle), /etc/handrail-agent (agent.yaml documenting every setting,
# the coordinator CA), /var/lib/handrail-agent (state: identity, spool; 0700), and a hardened
# systemd unit, then starts the agent, which enrolls with the one-time token. Re-running it
# upgrades the bundle and keeps the agent's identity (the new token then goes unused).
#
# For tests and unusual hosts (all optional):
#   HANDRAIL_INSTALL_ROOT=DIR   (--root DIR) install under DIR instead of /
#   HANDRAIL_INSTALL_NO_USER=1  (--no-user) run the agent as the invoking user; create no user
#   HANDRAIL_INSTALL_NO_SYSTEMD=1 (--no-systemd) write the unit but do not call systemctl
#   HANDRAIL_INSTALL_NODE=PATH  (--node PATH) the node binary (default: node on PATH)
set -eu

HANDRAIL_VERSION='@HANDRAIL_VERSION@'
BUNDLE_SHA256='@BUNDLE_SHA256@'
SERVICE=handrail-agent
AGENT_USER=handrail-agent

say() { printf 'handrail install: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

ROOT=${HANDRAIL_INSTALL_ROOT:-}
NO_USER=${HANDRAIL_INSTALL_NO_USER:-}
NO_SYSTEMD=${HANDRAIL_INSTALL_NO_SYSTEMD:-}
NODE=${HANDRAIL_INSTALL_NODE:-}
SERVER= COORDINATOR= SERVER_NAME= CA_FILE= TOKEN_FILE= BUNDLE_URL= NAME=
UNINSTALL= KEEP_IDENTITY= PROTECT_SYSTEM=full
while [ $# -gt 0 ]; do
  case $1 in
    --server) SERVER=$2; shift 2 ;;
    --coordinator) COORDINATOR=$2; shift 2 ;;
    --server-name) SERVER_NAME=$2; shift 2 ;;
    --ca) CA_FILE=$2; shift 2 ;;
    --token-file) TOKEN_FILE=$2; shift 2 ;;
    --bundle-url) BUNDLE_URL=$2; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --protect-system) PROTECT_SYSTEM=$2; shift 2 ;;
    --root) ROOT=$2; shift 2 ;;
    --node) NODE=$2; shift 2 ;;
    --no-user) NO_USER=1; shift ;;
    --no-systemd) NO_SYSTEMD=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --keep-identity) KEEP_IDENTITY=1; shift ;;
    *) die "unknown option $1 (see the comments at the top of this script)" ;;
  esac
done
case $PROTECT_SYSTEM in full|strict|no) ;; *) die "--protect-system must be full, strict or no" ;; esac

OPT_DIR=$ROOT/opt/handrail-agent
ETC_DIR=$ROOT/etc/handrail-agent
STATE_DIR=$ROOT/var/lib/handrail-agent
UNIT_FILE=$ROOT/etc/systemd/system/$SERVICE.service

systemctl_() { [ -n "$NO_SYSTEMD" ] || systemctl "$@"; }

if [ -n "$UNINSTALL" ]; then
  systemctl_ disable --now "$SERVICE" 2>/dev/null || true
  rm -f "$UNIT_FILE"
  systemctl_ daemon-reload || true
  rm -rf "$OPT_DIR" "$ETC_DIR"
  if [ -n "$KEEP_IDENTITY" ] && [ -d "$STATE_DIR/identity" ]; then
    # Everything but the identity (key, certificate, agent id): reinstalling later is the same agent.
    find "$STATE_DIR" -mindepth 1 -maxdepth 1 ! -name identity -exec rm -rf {} +
    say "removed; kept the agent identity in $STATE_DIR/identity"
  else
    rm -rf "$STATE_DIR"
    if [ -z "$NO_USER" ] && id "$AGENT_USER" >/dev/null 2>&1; then userdel "$AGENT_USER" 2>/dev/null || true; fi
    say "removed"
  fi
  exit 0
fi

[ -n "$SERVER" ] || die "--server URL is required (the coordinator's web address)"
[ -n "$COORDINATOR" ] || die "--coordinator HOST:PORT is required (the coordinator's agent port)"
[ -n "$CA_FILE" ] && [ -r "$CA_FILE" ] || die "--ca FILE is required and must be readable (the coordinator CA)"
command -v curl >/dev/null || die "curl is required"
command -v sha256sum >/dev/null || die "sha256sum is required"
[ -n "$NODE" ] || NODE=$(command -v node || true)
[ -n "$NODE" ] && [ -x "$NODE" ] || die "Node.js >= 20.17 is required (no node on PATH; or pass --node PATH)"
"$NODE" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=17)?0:1)' ||
  die "Node.js >= 20.17 is required ($NODE is $("$NODE" --version))"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[ -n "$BUNDLE_URL" ] || BUNDLE_URL=${SERVER%/}/install/agent.mjs
curl -fsS --cacert "$CA_FILE" -o "$WORK/handrail-agent.mjs" "$BUNDLE_URL" || die "could not download the agent bundle from $BUNDLE_URL"
GOT=$(sha256sum "$WORK/handrail-agent.mjs" | cut -d' ' -f1)
if [ "$GOT" != "$BUNDLE_SHA256" ]; then
  die "the downloaded agent bundle is corrupted or was tampered with: its SHA-256 is $GOT, the coordinator published $BUNDLE_SHA256; nothing was installed (download again, or check $BUNDLE_URL)"
fi

if [ -z "$NO_USER" ]; then
  if ! id "$AGENT_USER" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/handrail-agent --no-create-home --shell /usr/sbin/nologin "$AGENT_USER" ||
      die "could not create the system user $AGENT_USER"
  fi
  RUN_USER=$AGENT_USER
else
  RUN_USER=$(id -un)
fi

umask 022
mkdir -p "$OPT_DIR" "$ETC_DIR" "$(dirname "$UNIT_FILE")"
mkdir -p "$STATE_DIR" && chmod 0700 "$STATE_DIR"
# The bundle and this script: replaced as a whole (an upgrade), root-owned, not writable by the agent.
cp "$WORK/handrail-agent.mjs" "$OPT_DIR/handrail-agent.mjs.new" && chmod 0644 "$OPT_DIR/handrail-agent.mjs.new"
mv -f "$OPT_DIR/handrail-agent.mjs.new" "$OPT_DIR/handrail-agent.mjs"
if [ -r "$0" ] && [ "$0" != "$OPT_DIR/install-agent.sh" ]; then cp "$0" "$OPT_DIR/install-agent.sh"; fi
cp "$CA_FILE" "$ETC_DIR/ca.pem" && chmod 0644 "$ETC_DIR/ca.pem"

# Paths as the running agent sees them (with a test ROOT, the prefixed ones).
A_ETC=$ETC_DIR A_STATE=$STATE_DIR A_OPT=$OPT_DIR
ENROLLED=
if [ -f "$STATE_DIR/identity/agent.json" ]; then
  ENROLLED=1
  say "already enrolled ($(sed -n 's/.*"agentId": *"\([^"]*\)".*/\1/p' "$STATE_DIR/identity/agent.json")): keeping its identity; the token is not used"
elif [ -n "$TOKEN_FILE" ]; then
  [ -r "$TOKEN_FILE" ] || die "--token-file $TOKEN_FILE is not readable"
  (umask 077 && cp "$TOKEN_FILE" "$STATE_DIR/enroll-token")
  chmod 0600 "$STATE_DIR/enroll-token"
else
  die "this host is not enrolled yet: --token-file FILE (the one-time token) is required"
fi

if [ -f "$ETC_DIR/agent.yaml" ]; then
  say "keeping the existing $ETC_DIR/agent.yaml (remove it to get a fresh one)"
else
  set -- --coordinator "$COORDINATOR" --ca "$A_ETC/ca.pem" --state-dir "$A_STATE" --token-file "$A_STATE/enroll-token"
  [ -z "$SERVER_NAME" ] || set -- "$@" --server-name "$SERVER_NAME"
  [ -z "$NAME" ] || set -- "$@" --name "$NAME"
  "$NODE" "$OPT_DIR/handrail-agent.mjs" config-template "$@" > "$ETC_DIR/agent.yaml.new"
  chmod 0640 "$ETC_DIR/agent.yaml.new"
  mv -f "$ETC_DIR/agent.yaml.new" "$ETC_DIR/agent.yaml"
fi

if [ -z "$NO_USER" ]; then
  chown -R "$RUN_USER:$RUN_USER" "$STATE_DIR"
  chown "root:$RUN_USER" "$ETC_DIR/agent.yaml"
fi

RW_PATHS="$A_STATE"
cat > "$UNIT_FILE.new" <<EOF
# Written by the Handrail agent installer $HANDRAIL_VERSION; re-running the install line rewrites it.
[Unit]
Description=Handrail agent (runs signed runbook steps for the coordinator at $COORDINATOR)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=$RUN_USER
ExecStart=$NODE --lite-mode --no-expose-wasm $A_OPT/handrail-agent.mjs --config $A_ETC/agent.yaml
Restart=on-failure
RestartSec=5s
# Exit status 2 is a configuration the agent refused (a spent token, an expired certificate):
# restarting cannot help; fix it and start the unit again.
RestartPreventExitStatus=2
# SIGTERM to the agent alone: it stops its steps' process groups itself within its stop grace
# (stopGrace, 30 s by default); whatever is left afterwards is killed.
KillMode=mixed
TimeoutStopSec=45s

# Hardening. Steps run as $RUN_USER under these rules too, so each is chosen to leave ordinary
# runbook steps working:
# NoNewPrivileges: neither the agent nor any step can gain privileges (setuid binaries such as
#   sudo stop working inside steps). Steps that need root need a unit of your own.
NoNewPrivileges=yes
# ProtectSystem: full makes /usr, /boot, /efi and /etc read-only; strict (--protect-system
#   strict) makes the whole file system read-only except the state directory, for fleets whose
#   runbooks only read; no turns it off.
ProtectSystem=$PROTECT_SYSTEM
ReadWritePaths=$RW_PATHS
# PrivateTmp: steps get their own /tmp and /var/tmp, emptied when the agent stops; a step cannot
#   read or plant files in the host's /tmp.
PrivateTmp=yes
# The agent's own files (key, spool, step scripts) are private to it.
UMask=0077

[Install]
WantedBy=multi-user.target
EOF
mv -f "$UNIT_FILE.new" "$UNIT_FILE"

if [ -n "$NO_SYSTEMD" ]; then
  say "installed $HANDRAIL_VERSION in ${ROOT:-/} (systemd not used: start it with $NODE $OPT_DIR/handrail-agent.mjs --config $ETC_DIR/agent.yaml)"
  exit 0
fi
systemctl daemon-reload
systemctl enable "$SERVICE" >/dev/null
if [ -n "$ENROLLED" ]; then systemctl restart "$SERVICE"; else systemctl start "$SERVICE"; fi
if [ -z "$ENROLLED" ]; then
  i=0
  while [ ! -f "$STATE_DIR/identity/agent.json" ]; do
    i=$((i + 1))
    [ $i -le 60 ] || die "the agent did not enroll within a minute: journalctl -u $SERVICE says why"
    sleep 1
  done
fi
say "agent $HANDRAIL_VERSION installed and running ($(sed -n 's/.*"agentId": *"\([^"]*\)".*/\1/p' "$STATE_DIR/identity/agent.json")); logs: journalctl -u $SERVICE"
