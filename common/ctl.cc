/* The control protocol's codec. See ctl.h. */
#include "ctl.h"

#include "memfd.h"
#include "message.h"
#include "proc.h"

namespace posthorn {

std::vector<uint8_t> ctl_command_encode(const CtlCommand &c, bool with_reqid)
{
	ImsgWriter w;
	if (with_reqid)
		w.u64(c.reqid);
	w.str(c.arg).u8(c.flag ? 1 : 0);
	return w.data();
}

bool ctl_command_decode(const Imsg &msg, CtlCommand &c, bool with_reqid, bool strict)
{
	ImsgReader r(msg, strict);
	c.reqid = with_reqid ? r.u64() : 0;
	c.arg = r.str(CTL_MAX_ARG);
	uint8_t flag = r.u8();
	if (!r.end() || flag > 1)
		return false;
	c.flag = flag == 1;
	return true;
}

bool ctl_is_client_command(uint32_t type)
{
	return type >= IMSG_CTL_SHOW_STATUS && type <= IMSG_CTL_LOG_VERBOSE;
}

bool ctl_reply_frame(const CtlReply &r, std::vector<uint8_t> &payload, Fd &doc)
{
	ImsgWriter w;
	w.u64(r.reqid).u8(r.ok ? 1 : 0).str(r.error.substr(0, CTL_MAX_ARG));
	payload = std::move(w.data());
	doc.reset();
	if (r.document.empty())
		return true;
	doc = memfd_sealed("posthorn-ctl", r.document);
	return doc.valid();
}

bool ctl_reply_send(ImsgChannel &chan, const CtlReply &r)
{
	std::vector<uint8_t> payload;
	Fd doc;
	if (!ctl_reply_frame(r, payload, doc)) {
		CtlReply err{r.reqid, false, "out of memory for the answer", ""};
		ctl_reply_frame(err, payload, doc);
	}
	return chan.compose(IMSG_CTL_REPLY, payload, std::move(doc));
}

bool ctl_reply_decode(const Imsg &msg, CtlReply &r, bool strict)
{
	ImsgReader rd(msg, strict);
	r.reqid = rd.u64();
	uint8_t ok = rd.u8();
	r.error = rd.str(CTL_MAX_ARG);
	if (!rd.end() || ok > 1)
		return false;
	r.ok = ok == 1;
	r.document.clear();
	if (!msg.fd)
		return true;
	return memfd_is_sealed(msg.fd.get()) &&
	    memfd_read(msg.fd.get(), r.document, CTL_MAX_DOCUMENT);
}

uint64_t ctl_reply_reqid(const Imsg &msg)
{
	ImsgReader r(msg);
	return r.u64();
}

bool ctl_valid_target(const std::string &arg, bool all_allowed)
{
	return (all_allowed && arg == "all") || valid_submission_id(arg);
}

} // namespace posthorn
