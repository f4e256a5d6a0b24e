"""Delivery: rendering win-back messages and handing them to email, webhook, SMS and CRM providers.

The dispatcher renders a message (`templates`), signs its unsubscribe link (`unsubscribe`) and
passes batches to the channel's `Sender` (`channels`); the `Delivery` it gets back says whether
the provider took the message, should be asked again later, or refused it for good.
"""
