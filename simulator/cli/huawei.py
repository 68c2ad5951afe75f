"""The OLT's command line, in the Huawei MA5800 dialect PON engineers know.

:class:`HuaweiCli` is a state machine: :meth:`HuaweiCli.handle` takes one line and returns the
output and the next prompt; the SSH session around it only moves bytes. Views and prompts::

    OLT1>                       user view         enable -> privileged
    OLT1#                       privileged view   config -> config
    OLT1(config)#               config view       interface gpon 0/1 -> interface view
    OLT1(config-if-gpon-0/1)#   interface view

``quit`` leaves a view (and the session from user or privileged view); ``return`` goes back to
privileged view. Every configuration change goes through ``olt.edit_config`` on running with
this session's id, so YANG validation, datastore locks and the ``refuse_commit`` fault apply
exactly as they do to NETCONF; a refused edit prints ``Failure: <reason>`` and changes nothing.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable

from lxml import etree

from simulator.cli import huawei_display as disp
from simulator.cli import oltconfig as oc
from simulator.cli.grammar import Args, CliSyntaxError, Grammar, tokenize
from simulator.cli.shell import Reply
from simulator.config import builder as bd
from simulator.config.errors import RpcError
from simulator.config.removal import first_uplink
from simulator.devices import Olt

USER, PRIVILEGED, CONFIG, GPON = "user", "privileged", "config", "gpon"
ALL_VIEWS = (USER, PRIVILEGED, CONFIG, GPON)
DEFAULT_PAGE_LINES = 24
MAX_DESCRIPTION = 64
_TDP_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

# Line and service profile ids have no place in the BBF model the OLT keeps; the CLI remembers
# them per registration (v-ani) so `display current-configuration` gives back what was typed.
_PROFILES: weakref.WeakKeyDictionary[Olt, dict[str, tuple[int, int]]] = (
    weakref.WeakKeyDictionary())


class Failure(Exception):
    """The device refused a command; printed as ``  Failure: <message>``."""


def _number(lo: int, hi: int) -> Callable[[str], object]:
    def convert(text: str) -> object:
        if not text.isdigit() or not lo <= int(text) <= hi:
            raise ValueError(f"{text!r} is not in {lo}..{hi}")
        return int(text)
    return convert


def _description(text: str) -> object:
    # Checked here, at the edge: the builder escapes XML, but a description must also print
    # back inside quotes on this CLI (current-configuration) without breaking the line.
    if not 1 <= len(text) <= MAX_DESCRIPTION or not text.isprintable() or '"' in text:
        raise ValueError("a description is 1..64 printable characters without '\"'")
    return text


def _tdp(text: str) -> object:
    if not _TDP_NAME.fullmatch(text):
        raise ValueError("not a traffic table name")
    return text


def _serial(text: str) -> object:
    return oc.parse_serial(text)


class HuaweiCli:
    """One CLI session's interpreter on an OLT (pure apart from the device it drives).

    ``interactive`` says whether the user typed the line after a prompt, which decides where
    the caret of an error goes (exec requests print no prompt).
    """

    def __init__(self, olt: Olt, session: int, *, interactive: bool = True) -> None:
        self.olt = olt
        self.session = session
        self.interactive = interactive
        self.view = USER
        self.board = ""  # "F/S" while in interface view
        self.page_lines = DEFAULT_PAGE_LINES
        self._close = False
        self._grammar = self._build_grammar()

    # ---- Shell protocol ------------------------------------------------------------------
    @property
    def banner(self) -> str:
        return (f"\n  {self.olt.vendor} Integrated Access Software ({self.olt.model}).\n"
                f"  Copyright(C) {self.olt.vendor}. All rights reserved.\n\n")

    @property
    def prompt(self) -> str:
        name = self.olt.name
        if self.view == USER:
            return f"{name}>"
        if self.view == PRIVILEGED:
            return f"{name}#"
        if self.view == CONFIG:
            return f"{name}(config)#"
        return f"{name}(config-if-gpon-{self.board})#"

    def handle(self, line: str) -> Reply:
        """Run one command line; errors come back as output with a non-zero status."""
        typed_after = len(self.prompt) if self.interactive else 0
        text = line.rstrip("\r\n")
        if not text.strip():
            return Reply("", self.prompt)
        if text.strip() == "?":
            words = self._grammar.first_words(self.view)
            return Reply("".join(f"  {w}\n" for w in words), self.prompt)
        try:
            action, args = self._grammar.match(self.view, tokenize(text), len(text.rstrip()))
            output = action(args)
        except CliSyntaxError as exc:
            return Reply(exc.render(typed_after) + "\n", self.prompt, status=1)
        except Failure as exc:
            return Reply(f"  Failure: {exc}\n", self.prompt, status=1)
        return Reply(output, self.prompt, close=self._close)

    # ---- grammar -------------------------------------------------------------------------
    def _build_grammar(self) -> Grammar[Callable[[Args], str]]:
        g: Grammar[Callable[[Args], str]] = Grammar({
            "num": _number(0, 255),
            "port": _number(0, 127),
            "ontid": _number(0, 127),
            "profile": _number(0, 8191),
            "eth": _number(1, 4),
            "vlan": _number(1, 4094),
            "index": _number(0, 65535),
            "gemport": _number(0, 65534),
            "lines": _number(1, 512),
            "screen": _number(0, 512),
            "fs": self._board_arg,
            "fsp": self._port_arg,
            "sn": _serial,
            "desc": _description,
            "tdp": _tdp,
        })
        every = ALL_VIEWS
        g.add("enable", [USER], self._enable)
        g.add("disable", [PRIVILEGED], self._disable)
        # Session settings an MA5800 takes (netmiko's huawei_olt sends them on connect): no
        # interactive "{ <cr>|... }" parameter prompts, no alarm output in the CLI. This CLI
        # has neither, so they change nothing.
        g.add("undo smart", every, lambda a: "")
        g.add("smart", every, lambda a: "")
        g.add("infoswitch cli OFF", [PRIVILEGED, CONFIG], lambda a: "")  # as on the box:
        g.add("infoswitch cli ON", [PRIVILEGED, CONFIG], lambda a: "")   # privileged only
        g.add("config", [PRIVILEGED], self._config)
        g.add("quit", every, self._quit)
        g.add("return", [CONFIG, GPON], self._return)
        g.add("save", [PRIVILEGED, CONFIG], self._save)
        g.add("scroll [<lines:lines>]", every, self._scroll)
        g.add("screen-length <lines:screen> temporary", every, self._scroll)
        g.add("display ont autofind all", every, lambda a: disp.autofind(self.olt))
        g.add("display ont info <f:num> <s:num> <p:num> all", every, self._ont_table)
        g.add("display ont info <f:num> <s:num> <p:num> <ontid:ontid>", every, self._ont_detail)
        g.add("display ont info by-sn <sn:sn>", every, self._ont_by_sn)
        g.add("display ont info <p:port> all", [GPON], self._ont_table)
        g.add("display ont info <p:port> <ontid:ontid>", [GPON], self._ont_detail)
        g.add("display service-port all", every, lambda a: disp.service_ports(self.olt))
        g.add("display service-port port <fsp:fsp> ont <ontid:ontid>", every,
              lambda a: disp.service_ports(self.olt, a.text("fsp"), a.number("ontid")))
        g.add("display current-configuration", every,
              lambda a: disp.current_configuration(self.olt, _PROFILES.get(self.olt, {})))
        g.add("display vlan all", every, lambda a: disp.vlans(self.olt))
        g.add("display version", every, lambda a: disp.version(self.olt))
        g.add("interface gpon <fs:fs>", [CONFIG], self._interface)
        g.add("ont add <p:port> <ontid:ontid> sn-auth <sn:sn> omci ont-lineprofile-id "
              "<line:profile> ont-srvprofile-id <srv:profile> [desc <desc:desc>]",
              [GPON], self._ont_add)
        g.add("ont delete <p:port> <ontid:ontid>", [GPON], self._ont_delete)
        g.add("ont port native-vlan <p:port> <ontid:ontid> eth <eth:eth> vlan <vlan:vlan>",
              [GPON], self._native_vlan)
        head = ("service-port <index:index> vlan <svlan:vlan> gpon <fsp:fsp> ont <ontid:ontid> "
                "gemport <gem:gemport> multi-service user-vlan <cvlan:vlan> tag-transform")
        tail = ("[inbound traffic-table name <tdp:tdp> outbound traffic-table name "
                "<tdp_out:tdp>]")
        g.add(f"{head} translate-and-add inner-vlan <inner:vlan> {tail}", [CONFIG],
              self._service_port)
        g.add(f"{head} translate {tail}", [CONFIG], self._service_port)
        g.add("undo service-port <index:index>", [CONFIG], self._undo_service_port)
        return g

    def _board_arg(self, text: str) -> object:
        if not any(p.startswith(text + "/") for p in self.olt.pon_ports) or text.count("/") != 1:
            raise ValueError(f"no GPON board {text}")
        return text

    def _port_arg(self, text: str) -> object:
        if text not in self.olt.pon_ports or oc.split_port(text) is None:
            raise ValueError(f"no PON port {text}")
        return text

    def _local_port(self, a: Args) -> str:
        """The PON port ``F/S/<p>`` of the board in interface view (a parameter error if none)."""
        port = f"{self.board}/{a.number('p')}"
        if port not in self.olt.pon_ports:
            raise a.error("p")
        return port

    def _edit(self, elements: list[etree._Element]) -> None:
        try:
            self.olt.edit_config("running", elements, session=self.session)
        except RpcError as exc:
            raise Failure(exc.message) from exc

    # ---- views ---------------------------------------------------------------------------
    def _enable(self, a: Args) -> str:
        self.view = PRIVILEGED
        return ""

    def _disable(self, a: Args) -> str:
        self.view = USER
        return ""

    def _config(self, a: Args) -> str:
        self.view = CONFIG
        return ""

    def _quit(self, a: Args) -> str:
        if self.view in (USER, PRIVILEGED):
            self._close = True
        elif self.view == CONFIG:
            self.view = PRIVILEGED
        else:
            self.view = CONFIG
        return ""

    def _return(self, a: Args) -> str:
        self.view = PRIVILEGED
        return ""

    def _interface(self, a: Args) -> str:
        self.board = a.text("fs")
        self.view = GPON
        return ""

    def _scroll(self, a: Args) -> str:
        self.page_lines = a.number("lines") if "lines" in a.values else 0
        return ""

    def _save(self, a: Args) -> str:
        self.olt.copy_running_to_startup()
        return ("  It will take several minutes to save configuration file, please wait...\n"
                "  The percentage of saved data on this board is: 100%\n"
                "  Configuration file had been saved successfully\n")

    # ---- displays ------------------------------------------------------------------------
    def _display_port(self, a: Args) -> str:
        if "f" in a.values:
            port = f"{a.number('f')}/{a.number('s')}/{a.number('p')}"
            if port not in self.olt.pon_ports:
                raise Failure("The port does not exist")
            return port
        return self._local_port(a)

    def _ont_table(self, a: Args) -> str:
        return disp.ont_table(self.olt, self._display_port(a))

    def _ont_detail(self, a: Args) -> str:
        onu = oc.find_onu(self.olt, self._display_port(a), a.number("ontid"))
        if onu is None:
            raise Failure("The ONT does not exist")
        return disp.ont_detail(self.olt, onu, _PROFILES.get(self.olt, {}).get(onu.vani))

    def _ont_by_sn(self, a: Args) -> str:
        onu = self.olt.view.onu_by_serial(a.text("sn"))
        if onu is None or oc.split_port(onu.port) is None:
            raise Failure("The ONT does not exist")
        return disp.ont_detail(self.olt, onu, _PROFILES.get(self.olt, {}).get(onu.vani))

    # ---- ONTs ----------------------------------------------------------------------------
    def _ont_add(self, a: Args) -> str:
        port, onu_id, serial = self._local_port(a), a.number("ontid"), a.text("sn")
        if self.olt.view.onu_by_serial(serial) is not None:
            raise Failure("SN already exists")
        if oc.find_onu(self.olt, port, onu_id) is not None:
            raise Failure("The ONT ID already exists")
        spec = bd.OnuSpec(port, onu_id, serial, a.opt_text("desc") or "")
        self._edit(bd.onu_registration(spec))
        _PROFILES.setdefault(self.olt, {})[spec.vani] = (a.number("line"), a.number("srv"))
        return (f"  Number of ONTs that can be added: 1, success: 1\n"
                f"  PortID :{a.number('p')}, ONTID :{onu_id}\n")

    def _ont_delete(self, a: Args) -> str:
        port, onu_id = self._local_port(a), a.number("ontid")
        onu = oc.find_onu(self.olt, port, onu_id)
        if onu is None:
            raise Failure("The ONT does not exist")
        if self.olt.view.services_of(onu.vani):
            raise Failure("The ONT has service virtual ports")
        self._edit(oc.delete_onu(self.olt.running, self.olt.view, onu))
        _PROFILES.get(self.olt, {}).pop(onu.vani, None)
        return "  Number of ONTs that can be deleted: 1, success: 1\n"

    def _native_vlan(self, a: Args) -> str:
        port, onu_id = self._local_port(a), a.number("ontid")
        eth, vlan = a.number("eth"), a.number("vlan")
        onu = oc.find_onu(self.olt, port, onu_id)
        if onu is None:
            raise Failure("The ONT does not exist")
        spec = oc.named_onu(onu)
        # One native VLAN per port: the sub-interface of the old one goes in the same edit.
        old = [name for name, v in oc.uni_native_vlans(self.olt.running, spec).get(eth, [])
               if v != vlan]
        elements = bd.delete_entries(interfaces=old) if old else []
        self._edit(elements + bd.uni_tagging(spec, eth, vlan))
        return ""

    # ---- service ports -------------------------------------------------------------------
    def _service_port(self, a: Args) -> str:
        olt, root = self.olt, self.olt.running
        index, s_vlan, c_vlan = a.number("index"), a.number("svlan"), a.number("cvlan")
        port, onu_id, gem = a.text("fsp"), a.number("ontid"), a.number("gem")
        if "inner" in a.values and a.number("inner") != c_vlan:
            raise Failure("inner-vlan must equal user-vlan: this OLT passes the C-VLAN "
                          "through unchanged")
        tdp = a.opt_text("tdp")
        if tdp != a.opt_text("tdp_out"):
            raise Failure("the inbound and outbound traffic tables must be the same")
        indexes = oc.service_indexes(olt)
        if index in indexes:
            raise Failure("Service virtual port has existed already")
        onu = oc.find_onu(olt, port, onu_id)
        if onu is None:
            raise Failure("The ONT does not exist")
        uplink = first_uplink(olt.uplinks, s_vlan)
        if uplink is None:
            raise Failure(f"The VLAN does not exist: S-VLAN {s_vlan} is not on any uplink "
                          "(network service missing)")
        spec = oc.named_onu(onu)
        natives = oc.uni_native_vlans(root, spec)
        unis = sorted(n for n, subs in natives.items() if any(v == c_vlan for _, v in subs))
        if not unis:
            raise Failure(f"no Ethernet port of ONT {port} {onu_id} has native VLAN {c_vlan}; "
                          "set it with 'ont port native-vlan' first")
        uni = unis[0]
        for g in oc.gemports(root):
            if g.interface == spec.venet(uni) and g.gemport_id not in (None, gem):
                raise Failure(f"ONT {port} {onu_id} eth {uni} already uses GEM port "
                              f"{g.gemport_id}")
        tcont = oc.tconts(root).get(f"tcont-{port}-{onu_id}")
        alloc = tcont.alloc_id if tcont is not None else oc.free_alloc_id(root)
        if alloc is None:
            raise Failure("no free T-CONT alloc-id is left on this OLT")
        names = oc.tdp_names(root)
        elements: list[etree._Element] = []
        if tdp is None:
            tdp = tcont.profile if tcont is not None and tcont.profile else oc.DEFAULT_TDP
        if tdp not in names:
            # The CLI's own default table is made on first use (also when a saved
            # configuration names it); any other must exist already.
            if tdp != oc.DEFAULT_TDP:
                raise Failure(f"The traffic table does not exist: {tdp}")
            elements += bd.traffic_profile(tdp, oc.DEFAULT_TDP_BPS)
        svc = bd.ServiceSpec(spec, uni, c_vlan, s_vlan, uplink, gem, alloc, tdp)
        if svc.forwarder in olt.view.services:
            raise Failure(f"Service virtual port has existed already (index "
                          f"{olt.service_port_ids.get(svc.forwarder)}, same ONT port and "
                          "user-vlan)")
        # Claim the index before the edit: listeners of the change may number services too.
        stale = {n: i for n, i in olt.service_port_ids.items() if i == index}
        for n in stale:
            del olt.service_port_ids[n]
        olt.service_port_ids[svc.forwarder] = index
        try:
            self._edit(elements + bd.olt_service(svc))
        except Failure:
            del olt.service_port_ids[svc.forwarder]
            olt.service_port_ids.update(stale)
            raise
        return ""

    def _undo_service_port(self, a: Args) -> str:
        name = oc.service_indexes(self.olt).get(a.number("index"))
        if name is None:
            raise Failure("The service virtual port does not exist")
        svc = self.olt.view.services[name]
        self._edit(oc.delete_service(self.olt.running, self.olt.view, svc))
        self.olt.service_port_ids.pop(name, None)
        return ""
