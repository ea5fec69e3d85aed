"""The mall's error codes (cart and checkout, coupons, orders, payments, refunds).

Besides these, the mall raises the shared codes of ``retail_crm.errors.ErrorCode`` (``invalid``,
``not_found``, ``conflict``, ``invalid_transition`` for an order status change that is not allowed …).
Values are what clients branch on: never change one once released. The member names are those of the
enums the codes came from (``CheckoutErrorCode``, ``OrderErrorCode``, ``PaymentErrorCode``, ``RefundErrorCode``).
"""

from __future__ import annotations

from enum import StrEnum


class MallErrorCode(StrEnum):
    # cart and checkout
    EMPTY_ORDER = "empty_order"  # an order (or checkout from the cart) with no lines (400)
    SKU_UNAVAILABLE = "sku_unavailable"  # an unknown SKU (400) or one no longer sold (409)
    MIXED_BRANDS = "mixed_brands"  # one order with items of two brands (400)
    OUT_OF_STOCK = "out_of_stock"  # not enough stock for an order, or to take out by a stock adjustment (409)
    COUPON_UNAVAILABLE = "coupon_unavailable"  # a coupon the member does not hold, or used or out of date
    COUPON_NOT_APPLICABLE = "coupon_not_applicable"  # a coupon of another brand, or the order is below its threshold
    POINTS_INVALID = "points_invalid"  # negative points, or more than points may pay of the order (400)
    LIVE_SESSION_INVALID = "live_session_invalid"  # an order credited to a live session not of its brand (400)
    # coupon issuing
    COUPON_TEMPLATE_INACTIVE = "coupon_template_inactive"  # issuing a coupon template that is switched off (409)
    COUPON_TEMPLATE_EXPIRED = "coupon_template_expired"  # issuing a coupon template whose window has ended (409)
    # orders and payment
    ORDER_NOT_FOUND = "order_not_found"  # no such order, or another member's (404)
    ORDER_NOT_PAYABLE = "order_not_payable"  # paying an order that is no longer pending, or totals nothing (409)
    ORDER_EXPIRED = "order_expired"  # paying a pending order past its payment deadline (409)
    PAYER_UNKNOWN = "payer_unknown"  # paying without a mini-program login (no openid) (409)
    PROVIDER_UNAVAILABLE = "payment_provider_unavailable"  # WeChat Pay unreachable or not configured (503)
    # refunds
    ORDER_NOT_REFUNDABLE = "order_not_refundable"  # a refund of an order that was never paid (409)
    NOT_DELIVERED = "not_delivered"  # a return of goods not yet delivered (409)
    RETURN_WINDOW_CLOSED = "return_window_closed"  # a return after the brand's no-reason return days (409)
    REFUND_EXCEEDS_PAID = "refund_exceeds_paid"  # refunding more than is left of the order or a line (409)
    INVALID_REFUND_STATE = "invalid_refund_state"  # approving or rejecting a refund already decided (409)
    REFUND_FAILED = "refund_failed"  # the payment provider refused the payout, or there is no payment (409)
