"""The SMTP server of the email tests: aiosmtpd keeping every mail in a Maildir, like
aiosmtpd.handlers.Mailbox, and refusing recipients the way real servers do, so the tests
see both answers: reject.* gets a permanent 550, tempfail.* a temporary 451 the first time."""

from aiosmtpd.handlers import Mailbox


class PolicyMailbox(Mailbox):
    def __init__(self, mail_dir):
        super().__init__(mail_dir)
        self.deferred = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject."):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("tempfail.") and address not in self.deferred:
            self.deferred.add(address)
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"
